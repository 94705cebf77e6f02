package ops

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// serve runs NewServer(h, opts...) on a free loopback port until the test
// ends and returns its address.
func serve(t *testing.T, h http.Handler, opts ...Option) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, NewServer(h, opts...), ln, time.Second) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ln.Addr().String()
}

// closedWithin reports whether the server closes c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// Hostile client: a keep-alive connection left idle after a request was
// held open without limit (no IdleTimeout), one socket and goroutine each.
func TestIdleKeepAliveConnectionsAreClosed(t *testing.T) {
	t.Parallel()
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		WithTimeouts(Timeouts{ReadHeader: time.Second, Idle: 300 * time.Millisecond}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if !closedWithin(c, 3*time.Second) {
		t.Fatal("an idle keep-alive connection is still open 3 s after its request (idle timeout 300 ms)")
	}
}

// A client that never finishes its request headers is cut off.
func TestSlowHeadersAreCut(t *testing.T) {
	t.Parallel()
	addr := serve(t, http.NotFoundHandler(), WithTimeouts(Timeouts{ReadHeader: 300 * time.Millisecond, Idle: time.Second}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(c, 3*time.Second) {
		t.Fatal("a client sending headers slowly is held past the read-header timeout")
	}
}

// The defaults NewServer uses bound headers and idle connections but
// set no whole-request deadline, which would cut Server-Sent Events and
// WebSockets.
func TestDefaultTimeouts(t *testing.T) {
	t.Parallel()
	s := NewServer(http.NotFoundHandler())
	if s.ReadHeaderTimeout <= 0 || s.IdleTimeout <= 0 || s.ReadTimeout != 0 || s.WriteTimeout != 0 {
		t.Fatalf("timeouts: header %v idle %v read %v write %v", s.ReadHeaderTimeout, s.IdleTimeout, s.ReadTimeout, s.WriteTimeout)
	}
}
