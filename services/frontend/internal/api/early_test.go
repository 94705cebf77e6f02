package api_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
)

// The refusals that leave a POST's body unread (overload before the body,
// no token) reach a client whose body is slow at once, not after the
// body: net/http would read the body before writing the answer, without
// bound (review s5-r3 F3, after its TestR3EarlyRefusalWaitsForTheBody).
// Raw TCP: the client sends 9 of its 100 body bytes and waits for the
// status line. The wait is bounded by a read deadline only so that a
// broken server fails the test instead of hanging it; nothing is timed.
func TestEarlyRefusalsDoNotWaitForTheBody(t *testing.T) {
	h := &heldTickets{entered: make(chan string, 8), release: make(chan struct{})}
	t.Cleanup(func() { close(h.release) })
	auth := &countingAuth{entered: make(chan struct{}, 8), held: make(chan struct{})}
	// A body timeout far past the read deadline: a refusal that waited
	// for the body would come as a 408 after it, or not at all.
	hs := authedFrontend(t, h, auth, api.Config{Admission: twoAtOnce, BodyTimeout: time.Minute})
	for _, tt := range []struct {
		name, token, want string
	}{
		{"no token", "", "401"},
		{"overloaded", "p:full", "503"},
	} {
		if tt.token == "p:full" {
			for i := range 2 { // fill both slots
				go sendAs(t.Context(), http.MethodPost, hs.URL+"/v1/tickets", fmt.Sprintf("p:h%d", i), eu)
				<-h.entered
			}
		}
		t.Run(tt.name, func(t *testing.T) {
			line := slowBodyPost(t, strings.TrimPrefix(hs.URL, "http://"), tt.token)
			if !strings.HasPrefix(line, "HTTP/1.1 "+tt.want+" ") {
				t.Fatalf("status line %q, want %s before the body is sent", line, tt.want)
			}
		})
	}
}

// slowBodyPost sends a POST /v1/tickets that announces 100 body bytes and
// sends 9, and returns the status line it reads back ("" if none came
// within 10 s).
func slowBodyPost(t *testing.T, addr, token string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hdr := "POST /v1/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
	if token != "" {
		hdr += "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := io.WriteString(c, hdr+"\r\n{\"skill\":"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Logf("no answer: %v", err)
	}
	return strings.TrimSpace(line)
}

// Those refusals keep the connection when the body has all come, as a
// ticket's does (sent with its headers): the next request is served on
// it. They said "Connection: close" to every POST, so past capacity each
// refused client, and each proxy's connection to the frontend, had to
// dial again. A body still on its way closes it, as above.
func TestEarlyRefusalsKeepTheConnectionWhenTheBodyHasCome(t *testing.T) {
	h := &heldTickets{entered: make(chan string, 8), release: make(chan struct{})}
	t.Cleanup(func() { close(h.release) })
	auth := &countingAuth{entered: make(chan struct{}, 8), held: make(chan struct{})}
	hs := authedFrontend(t, h, auth, api.Config{Admission: twoAtOnce, BodyTimeout: time.Minute})
	chunked := fmt.Sprintf("Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(eu), eu)
	for _, tt := range []struct {
		name, auth, body string
		want             int
	}{
		{"no token", "", fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(eu), eu), http.StatusUnauthorized},
		{"overloaded", "Authorization: Bearer p:full\r\n", fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(eu), eu), http.StatusServiceUnavailable},
		{"overloaded, chunked", "Authorization: Bearer p:full\r\n", chunked, http.StatusServiceUnavailable},
	} {
		if tt.name == "overloaded" {
			for i := range 2 { // fill both slots
				go sendAs(t.Context(), http.MethodPost, hs.URL+"/v1/tickets", fmt.Sprintf("p:h%d", i), eu)
				<-h.entered
			}
		}
		t.Run(tt.name, func(t *testing.T) {
			// One write: the headers and the body arrive together.
			c, br, res := rawPost(t, hs.URL, tt.auth+tt.body)
			if res.StatusCode != tt.want || res.Close {
				t.Fatalf("%d, connection closed %v; want %d on a connection kept", res.StatusCode, res.Close, tt.want)
			}
			if _, err := io.WriteString(c, "GET /openapi.yaml HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			next, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("the next request on the connection: %v", err)
			}
			next.Body.Close()
			if next.StatusCode != http.StatusOK {
				t.Fatalf("the next request on the connection: %d", next.StatusCode)
			}
		})
	}
}

// A refusal that closes its connection reads what is left of the body,
// for a moment (closeDrain), before it closes: a close with the client's
// bytes unread is a TCP reset, which can lose the answer at a client
// still sending, and a client that sends its body after the headers (or
// one larger than the server's read buffer) met it (review R1 of
// skipBody). Without a bound, that read held the connection as long as
// the client kept it open: a body announced with Expect: 100-continue
// and never sent held it after its answer (and no 100 Continue invites
// the body of a request refused).
func TestEarlyRefusalsCloseWithoutAReset(t *testing.T) {
	h := &heldTickets{entered: make(chan string, 8), release: make(chan struct{})}
	t.Cleanup(func() { close(h.release) })
	auth := &countingAuth{entered: make(chan struct{}, 8), held: make(chan struct{})}
	hs := authedFrontend(t, h, auth, api.Config{Admission: twoAtOnce, BodyTimeout: time.Minute})
	for i := range 2 { // fill both slots: every POST below is refused
		go sendAs(t.Context(), http.MethodPost, hs.URL+"/v1/tickets", fmt.Sprintf("p:h%d", i), eu)
		<-h.entered
	}
	big := strings.Repeat(" ", 8000-len(eu)) + eu // past the server's 4 KiB read buffer
	for _, tt := range []struct {
		name, head, first, later string
	}{
		{"a body past the read buffer", fmt.Sprintf("Content-Length: %d\r\n", len(big)), big, ""},
		{"a body sent after the answer", fmt.Sprintf("Content-Length: %d\r\n", len(eu)), eu[:9], eu[9:]},
		{"Expect: 100-continue, no body", fmt.Sprintf("Expect: 100-continue\r\nContent-Length: %d\r\n", len(eu)), "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, br, res := rawPost(t, hs.URL, "Authorization: Bearer p:full\r\n"+tt.head+"\r\n"+tt.first)
			if res.StatusCode != http.StatusServiceUnavailable || !res.Close {
				t.Fatalf("%d, connection closed %v; want 503 and a close", res.StatusCode, res.Close)
			}
			if tt.later != "" {
				// The connection waits for the rest a moment, not closed at once.
				_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				if _, err := br.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("before the rest of the body: %v; want the connection open for it", err)
				}
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(c, tt.later); err != nil {
					t.Fatalf("the rest of the body: %v", err)
				}
			}
			if n, err := br.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("after the answer: %d bytes, %v; want the server's close (EOF), no reset", n, err)
			}
		})
	}
}

// rawPost sends, in one write on a connection of its own, a POST
// /v1/tickets whose headers end with rest (more headers, the blank line
// and what is sent of the body), and returns the connection (closed at
// the test's end), its reader and the answer, its body read. A broken
// server fails the test instead of hanging it (a deadline of 10 s).
func rawPost(t *testing.T, url, rest string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, "POST /v1/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+rest); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return c, br, res
}
