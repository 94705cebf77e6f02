package api_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
)

// A client that sends requests and never reads their answers held its
// connection and a handler's goroutine for good: nothing bounded a
// response's write (review of 2026-12-05: 72 answers of /openapi.yaml in
// the socket, the handler blocked in Write 90 s on, the connection still
// open). Past Config.WriteTimeout the frontend now cuts it off.
func TestHostileClientThatNeverReadsIsCutOff(t *testing.T) {
	t.Parallel()
	e := start(t, options{api: api.Config{WriteTimeout: 300 * time.Millisecond}})
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024) })
		return errors.Join(err, serr)
	}}
	conn, err := d.DialContext(t.Context(), "tcp", strings.TrimPrefix(e.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const requests = 300 // about 6.6 MB of answers: far past what the sockets buffer
	var req strings.Builder
	for range requests {
		fmt.Fprintf(&req, "GET /openapi.yaml HTTP/1.1\r\nHost: frontend\r\n\r\n")
	}
	go func() { _, _ = io.WriteString(conn, req.String()) }()
	time.Sleep(2 * time.Second) // the client reads nothing meanwhile
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connection was kept open for a client that did not read (%d bytes read, then it waited for more)", n)
	}
	if one := int64(len(openAPIBody(t, e))); n >= requests*one {
		t.Fatalf("every answer was written (%d bytes): the client was not cut off", n)
	}
}

// openAPIBody is the frontend's /openapi.yaml.
func openAPIBody(t *testing.T, e *env) []byte {
	t.Helper()
	res, err := e.http.Client().Get(e.http.URL + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The write deadline is re-armed before each event of a stream: a client
// that reads keeps its stream open past Config.WriteTimeout, heartbeats
// and all, and gets its outcome.
func TestAStreamThatIsReadOutlivesTheWriteTimeout(t *testing.T) {
	t.Parallel()
	for _, m := range []struct {
		name   string
		h2c    bool
		client *http.Client
	}{
		{"HTTP/1.1", false, http.DefaultClient},
		{"h2c", true, h2cClient()},
	} {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			outlives(t, start(t, options{api: api.Config{WriteTimeout: 300 * time.Millisecond}, h2c: m.h2c}), m.client)
		})
	}
}

// h2cClient speaks HTTP/2 without TLS (prior knowledge), as the load
// tool and many game backends do.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

// outlives follows a ticket's stream through c for ten of e's write
// timeouts, reading, and fails unless it stays open and gets its outcome.
func outlives(t *testing.T, e *env, c *http.Client) {
	t.Helper()
	_, body := e.post(t, `{"player_id":"alice","skill":1650,"region":"eu"}`, "")
	id := body["ticket_id"].(string)
	s := openEventsWith(t, e, c, id, "alice")
	if v := s.next(t); v["status"] != "queued" {
		t.Fatalf("first event %v", v)
	}
	// Ten write timeouts of heartbeats (every 100 ms in these tests), read.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		if _, err := s.r.ReadString('\n'); err != nil {
			t.Fatalf("the stream ended under a reading client: %v", err)
		}
	}
	e.allocate(t, id, "alice")
	for {
		if v := s.next(t); v["status"] == "assigned" {
			return
		}
	}
}
