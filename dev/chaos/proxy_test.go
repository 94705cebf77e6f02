package chaos

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// quiet is how long a read waits to show that nothing arrives: the check
// is that a cut delivers nothing and closes nothing, not how fast.
const quiet = 300 * time.Millisecond

// behind starts a link in front of a listener of its own and returns the
// link and the listener's side of each connection made through it.
func behind(t *testing.T) (*link, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			accepted <- c
		}
	}()
	l, err := newLink("test", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	return l, accepted
}

// dial connects through l and returns both ends.
func dial(t *testing.T, l *link, accepted <-chan net.Conn) (client, server net.Conn) {
	t.Helper()
	client, err := net.Dial("tcp", l.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
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
	if !bytes.Equal(got, []byte(want)) {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// held checks that nothing arrives on c for a while and that c is still
// open: the read ends by its deadline, not by an end of stream or a reset.
func held(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(quiet))
	var b [64]byte
	n, err := c.Read(b[:])
	if n > 0 {
		t.Fatalf("read %q through a cut", b[:n])
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a cut connection ended: %v", err)
	}
}

func TestLinkForwardsBothWays(t *testing.T) {
	l, accepted := behind(t)
	client, server := dial(t, l, accepted)
	send(t, client, "PING\r\n")
	expect(t, server, "PING\r\n")
	send(t, server, "PONG\r\n")
	expect(t, client, "PONG\r\n")
	if n := l.connected(); n != 1 {
		t.Errorf("connected = %d, want 1", n)
	}
}

func TestCutHoldsBothWaysAndHealDeliversInOrder(t *testing.T) {
	l, accepted := behind(t)
	client, server := dial(t, l, accepted)
	l.cut(both)
	send(t, client, "PUB a 1\r\n")
	send(t, server, "MSG a 1\r\n")
	held(t, server)
	held(t, client)
	send(t, client, "PUB b 2\r\n") // still open, still held
	held(t, server)
	l.heal()
	expect(t, server, "PUB a 1\r\nPUB b 2\r\n")
	expect(t, client, "MSG a 1\r\n")
	send(t, client, "after\r\n")
	expect(t, server, "after\r\n")
}

func TestCutOneDirection(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    direction
	}{{"up", up}, {"down", down}} {
		t.Run(tc.name, func(t *testing.T) {
			l, accepted := behind(t)
			client, server := dial(t, l, accepted)
			l.cut(tc.d)
			// The cut side's bytes are held, the other side's flow.
			from, to, other, otherTo := client, server, server, client
			if tc.d == down {
				from, to, other, otherTo = server, client, client, server
			}
			send(t, from, "held\r\n")
			send(t, other, "flows\r\n")
			expect(t, otherTo, "flows\r\n")
			held(t, to)
			l.heal()
			expect(t, to, "held\r\n")
		})
	}
}

// A close during a cut is held like the bytes before it: the other end
// learns of it only at the heal, after those bytes.
func TestCutHoldsAClose(t *testing.T) {
	l, accepted := behind(t)
	client, server := dial(t, l, accepted)
	l.cut(both)
	send(t, server, "-ERR 'Stale Connection'\r\n")
	server.Close()
	held(t, client)
	l.heal()
	expect(t, client, "-ERR 'Stale Connection'\r\n")
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := client.Read(make([]byte, 8)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("after the held bytes: %d bytes, %v; want the end of the stream", n, err)
	}
}

// A connection made during a cut is held from its first byte, as a
// connection attempt across a partition gets no answer.
func TestConnectionMadeDuringACutIsHeld(t *testing.T) {
	l, accepted := behind(t)
	l.cut(both)
	client, server := dial(t, l, accepted)
	send(t, server, "INFO {}\r\n")
	held(t, client)
	l.heal()
	expect(t, client, "INFO {}\r\n")
}

// A node that is down behind a cut looks like one that does not answer:
// the refusal comes through only at the heal.
func TestCutHoldsARefusal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close() // nothing listens there now
	l, err := newLink("test", target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	l.cut(both)
	client, err := net.Dial("tcp", l.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	held(t, client)
	l.heal()
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := client.Read(make([]byte, 8)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("after the heal: %d bytes, %v; want the connection closed", n, err)
	}
}
