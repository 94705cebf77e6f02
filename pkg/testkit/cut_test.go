package testkit_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
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

// behind starts a listener of its own and a link in front of it, and
// returns the link and the listener's side of each connection made
// through it.
func behind(t *testing.T) (*testkit.Link, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
			accepted <- c
		}
	}()
	return testkit.NewLink(t, ln.Addr().String()), accepted
}

// dial connects through l and returns both ends.
func dial(t *testing.T, l *testkit.Link, accepted <-chan net.Conn) (client, server net.Conn) {
	t.Helper()
	client, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	select {
	case server = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the link did not connect to its target")
	}
	return client, server
}

func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("write on a held connection failed (it must stay open): %v", err)
	}
}

// expect reads exactly want from c.
func expect(t *testing.T, c net.Conn, want string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read %q: got %q, %v", want, got, err)
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// held checks that nothing arrives on c for a moment and that c is still
// open: the read ends by its deadline, not by an end of stream or a reset.
func held(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var b [64]byte
	n, err := c.Read(b[:])
	if n > 0 {
		t.Fatalf("read %q through a cut", b[:n])
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a cut connection ended: %v", err)
	}
}

// ended checks that c ends (the end of the stream) with nothing more.
func ended(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 8)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read %d bytes, %v; want the end of the stream", n, err)
	}
}

// A cut of one direction holds that direction's bytes; the other's flow.
func TestCutOneDirection(t *testing.T) {
	t.Parallel()
	for _, d := range []testkit.Direction{testkit.Up, testkit.Down} {
		t.Run(map[testkit.Direction]string{testkit.Up: "up", testkit.Down: "down"}[d], func(t *testing.T) {
			l, accepted := behind(t)
			client, server := dial(t, l, accepted)
			l.Cut(d)
			from, to, other, otherTo := client, server, server, client
			if d == testkit.Down {
				from, to, other, otherTo = server, client, client, server
			}
			send(t, from, "held\r\n")
			send(t, other, "flows\r\n")
			expect(t, otherTo, "flows\r\n")
			held(t, to)
			l.Heal()
			expect(t, to, "held\r\n")
		})
	}
}

// A close during a cut is held like the bytes before it: the other end
// learns of it only at the heal, after those bytes.
func TestCutHoldsAClose(t *testing.T) {
	t.Parallel()
	l, accepted := behind(t)
	client, server := dial(t, l, accepted)
	l.Cut(testkit.Both)
	send(t, server, "-ERR 'Stale Connection'\r\n")
	_ = server.Close()
	held(t, client)
	l.Heal()
	expect(t, client, "-ERR 'Stale Connection'\r\n")
	ended(t, client)
}

// A connection made during a cut is held from its first byte, as a
// connection attempt across a partition gets no answer.
func TestConnectionMadeDuringACutIsHeld(t *testing.T) {
	t.Parallel()
	l, accepted := behind(t)
	l.Cut(testkit.Both)
	client, server := dial(t, l, accepted)
	send(t, server, "INFO {}\r\n")
	held(t, client)
	l.Heal()
	expect(t, client, "INFO {}\r\n")
}

// A target that is down behind a cut looks like one that does not answer:
// the refusal comes through only at the heal (or when the link closes).
func TestCutHoldsARefusal(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	for _, end := range []string{"heal", "close"} {
		t.Run(end, func(t *testing.T) {
			l := testkit.NewLink(t, target)
			l.Cut(testkit.Both)
			client, err := net.Dial("tcp", l.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			held(t, client)
			if end == "heal" {
				l.Heal()
			} else {
				l.Close()
			}
			ended(t, client)
		})
	}
}
