package testkit_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// echo serves on loopback, sending each line back, and hands each line
// it reads to got.
func echo(t *testing.T) (addr string, got <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	lines := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					s, err := r.ReadString('\n')
					if err != nil {
						return
					}
					lines <- s
					if _, err := c.Write([]byte(s)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), lines
}

func recv(t *testing.T, c <-chan string, want string) {
	t.Helper()
	select {
	case s := <-c:
		if s != want {
			t.Fatalf("got %q, want %q", s, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%q never came", want)
	}
}

// quiet fails if c delivers anything within a moment: what a cut holds
// must not come through.
func quiet(t *testing.T, c <-chan string) {
	t.Helper()
	select {
	case s := <-c:
		t.Fatalf("%q came through a cut", s)
	case <-time.After(200 * time.Millisecond):
	}
}

func readLines(c net.Conn) <-chan string {
	out := make(chan string, 16)
	go func() {
		defer close(out)
		r := bufio.NewReader(c)
		for {
			s, err := r.ReadString('\n')
			if err != nil {
				return
			}
			out <- s
		}
	}()
	return out
}

// TestLinkHoldsWhatACutCarriesAndForwardsItAtTheHeal: a cut of one
// direction holds that direction only; a heal forwards what was held, in
// order, on the same connection; a drop closes the connection.
func TestLinkHoldsWhatACutCarriesAndForwardsItAtTheHeal(t *testing.T) {
	t.Parallel()
	addr, server := echo(t)
	l := testkit.NewLink(t, addr)
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client := readLines(c)
	write := func(s string) {
		t.Helper()
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write("a\n")
	recv(t, server, "a\n")
	recv(t, client, "a\n")

	l.Cut(testkit.Down) // the server hears, the client does not
	write("b\n")
	recv(t, server, "b\n")
	quiet(t, client)
	l.Heal()
	recv(t, client, "b\n")

	l.Cut(testkit.Both)
	write("c\n")
	quiet(t, server)
	l.Heal()
	write("d\n")
	recv(t, server, "c\n")
	recv(t, server, "d\n")
	recv(t, client, "c\n")
	recv(t, client, "d\n")
	if n := l.Connected(); n != 1 {
		t.Fatalf("%d connections forwarded, want 1", n)
	}

	l.Cut(testkit.Both)
	write("e\n")
	l.Drop() // what was held is lost
	if s, ok := <-client; ok {
		t.Fatalf("%q came after the drop", s)
	}
	l.Heal()
	quiet(t, server)
}
