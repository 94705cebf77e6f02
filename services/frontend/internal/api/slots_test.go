package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/admission"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/drain"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

// serveAPI serves the API over t, without identity, on a listener ln
// may wrap (nil: as it is).
func serveAPI(t *testing.T, tk api.Tickets, cfg api.Config, wrap func(net.Listener) net.Listener) *httptest.Server {
	t.Helper()
	done := make(chan struct{})
	var ready ops.Readiness
	ready.Set(true)
	cfg.Insecure = true
	handler, err := api.New(cfg, tk, followed{}, slog.New(slog.DiscardHandler), &ready, prometheus.NewRegistry(), done)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(handler)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // the panics below are meant
	if wrap != nil {
		hs.Listener = wrap(hs.Listener)
	}
	hs.Start()
	t.Cleanup(func() {
		close(done)
		hs.Close()
	})
	return hs
}

// stallListener's connections that ask for a WebSocket never take what
// the server writes, as a client whose receive window is full and who
// never reads: a write waits until its deadline passes, or forever.
type stallListener struct {
	net.Listener
	stalled atomic.Int32 // writes that found the connection stalled
}

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stallConn{Conn: c, l: l, closed: make(chan struct{})}, nil
}

type stallConn struct {
	net.Conn
	l         *stallListener
	ws        atomic.Bool
	mu        sync.Mutex
	deadline  time.Time
	closeOnce sync.Once
	closed    chan struct{}
}

func (c *stallConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if bytes.Contains(p[:n], []byte("GET /ws")) {
		c.ws.Store(true)
	}
	return n, err
}

func (c *stallConn) Write(p []byte) (int, error) {
	if !c.ws.Load() {
		return c.Conn.Write(p)
	}
	c.l.stalled.Add(1)
	for {
		c.mu.Lock()
		dl := c.deadline
		c.mu.Unlock()
		if !dl.IsZero() && !time.Now().Before(dl) {
			return 0, os.ErrDeadlineExceeded
		}
		select {
		case <-c.closed:
			return 0, net.ErrClosed
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (c *stallConn) SetDeadline(t time.Time) error {
	c.setWrite(t)
	return c.Conn.SetDeadline(t)
}

func (c *stallConn) SetWriteDeadline(t time.Time) error {
	c.setWrite(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *stallConn) setWrite(t time.Time) {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
}

func (c *stallConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// Two WebSocket clients whose 101 cannot be written (they never read)
// hold the two creation slots only until the handshake times out (the
// body timeout); then the slots are free and a POST is admitted.
func TestOverloadHandshakeNeverReadHoldsNoSlot(t *testing.T) {
	t.Parallel()
	h := &heldTickets{entered: make(chan string, 8), release: make(chan struct{})}
	close(h.release)
	stall := &stallListener{}
	hs := serveAPI(t, h, api.Config{Admission: twoAtOnce, BodyTimeout: 200 * time.Millisecond}, func(ln net.Listener) net.Listener {
		stall.Listener = ln
		return stall
	})
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second) // bounds a hang; measures nothing
			defer cancel()
			if conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws?player_id=s"+fmt.Sprint(i), nil); err == nil {
				conn.Close()
				t.Errorf("client %d: upgraded, yet it never read the 101", i)
			}
		})
	}
	wg.Wait()
	if n := stall.stalled.Load(); n < 2 {
		t.Fatalf("%d handshakes stalled, want 2", n)
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		return metric(t, hs.URL, "quickmatch_frontend_creations_in_flight") == 0
	}, "stalled handshakes still hold %v slots", metric(t, hs.URL, "quickmatch_frontend_creations_in_flight"))
	if a := <-postInBackground(t.Context(), hs.URL, "p"); a.code != http.StatusAccepted {
		t.Fatalf("POST after the stalled handshakes: %d %v", a.code, a.body)
	}
}

// clock is a test's own time, moved by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// instantTickets ends each creation at once by its player: "gone" waits
// for its request to end (its client hung up), "noresp" finds no stream
// responder (both as tickets.Create would say them); any other is
// queued.
type instantTickets struct{ heldTickets }

func (h *instantTickets) Create(ctx context.Context, _ identity.Caller, req tickets.Request, _ string) (tickets.View, error) {
	switch req.PlayerID {
	case "gone":
		h.entered <- req.PlayerID
		<-ctx.Done()
		return tickets.View{}, fmt.Errorf("store ticket x: %w", ctx.Err())
	case "noresp":
		return tickets.View{}, fmt.Errorf("queue ticket x: %w", jetstream.ErrNoStreamResponse)
	case "noresp-core":
		return tickets.View{}, fmt.Errorf("take ticket x: %w", nats.ErrNoResponders)
	}
	return tickets.View{TicketID: "t", Status: events.StatusQueued, Region: "eu", Tier: "gold", Mode: "1v1"}, nil
}

// Creations whose client hung up, or that found no responder, end at
// once and say nothing of the broker's latency: however many, the limit
// does not move. Instant queued creations, as many, do move it (so the
// test could see a move).
func TestOverloadMeasuresOnlyWhatTheBrokerAnswered(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Unix(1e9, 0)}
	h := &instantTickets{heldTickets{entered: make(chan string, 1)}}
	adm := admission.Config{Target: 100 * time.Millisecond, Min: 1, Initial: 2, Max: 100, Window: 100 * time.Millisecond, Now: clk.Now}
	hs := serveAPI(t, h, api.Config{Admission: adm}, nil)
	limit := func() float64 { return metric(t, hs.URL, "quickmatch_frontend_creation_limit") }
	post := func(player string) answer {
		clk.Add(time.Second) // every creation in a window of its own
		return send(t.Context(), http.MethodPost, hs.URL+"/v1/tickets", `{"player_id":"`+player+`","skill":1650,"region":"eu"}`)
	}
	for i := range 16 {
		for _, p := range []string{"noresp", "noresp-core"} {
			if a := post(p); a.code != http.StatusServiceUnavailable {
				t.Fatalf("%s %d: %d %v", p, i, a.code, a.body)
			}
		}
		ctx, hangUp := context.WithCancel(t.Context())
		clk.Add(time.Second)
		gone := postInBackground(ctx, hs.URL, "gone")
		<-h.entered
		hangUp()
		<-gone
		testkit.Eventually(t, 5*time.Second, func() bool {
			return metric(t, hs.URL, "quickmatch_frontend_creations_in_flight") == 0
		}, "a hung-up creation never ended")
	}
	if got := limit(); got != 2 {
		t.Fatalf("limit %v after instant failures, want 2 (unmoved)", got)
	}
	for i := range 8 {
		if a := post(fmt.Sprint("p", i)); a.code != http.StatusAccepted {
			t.Fatalf("creation %d: %d %v", i, a.code, a.body)
		}
	}
	if got := limit(); got <= 2 {
		t.Fatalf("limit %v after 8 fast creations, want it raised", got)
	}
}

type panickyTickets struct{ heldTickets }

func (h *panickyTickets) Create(context.Context, identity.Caller, tickets.Request, string) (tickets.View, error) {
	panic("a bug in Create")
}

// A creation that panics, by POST or WebSocket, gives its slot back (and
// a WebSocket client is let go): past twice the limit of such, nothing
// is in flight and creations are still admitted.
func TestOverloadPanicGivesTheSlotBack(t *testing.T) {
	t.Parallel()
	hs := serveAPI(t, &panickyTickets{}, api.Config{Admission: twoAtOnce}, nil)
	for i := range 3 {
		if a := send(t.Context(), http.MethodPost, hs.URL+"/v1/tickets", `{"player_id":"x","skill":1650,"region":"eu"}`); a.err == nil {
			t.Fatalf("POST %d: %d %v, want the connection cut by the panic", i, a.code, a.body)
		}
		conn, _, err := websocket.DefaultDialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws?player_id=x", nil)
		if err != nil {
			continue // refused: overloaded, checked below
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second)) // bounds a hang; measures nothing
		_, _, err = conn.ReadMessage()
		conn.Close()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("WebSocket %d: left open after the panic", i)
		}
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		return metric(t, hs.URL, "quickmatch_frontend_creations_in_flight") == 0
	}, "panicked creations hold %v slots", metric(t, hs.URL, "quickmatch_frontend_creations_in_flight"))
}

// drainedTickets refuses every creation: its shard is drained, for a
// reason in a script of three bytes a character, longer than a close
// frame carries.
type drainedTickets struct{ heldTickets }

const longReason = "サーバー更新中サーバー更新中サーバー更新中サーバー更新中サーバー更新中サーバー更新中サーバー更新中サーバー更新中サーバー更新中"

func (h *drainedTickets) Create(context.Context, identity.Caller, tickets.Request, string) (tickets.View, error) {
	return tickets.View{}, &drain.DrainedError{Shard: events.Shard{Region: "eu", Tier: "gold"}, Reason: longReason, RetryAfter: drain.RetryAfter}
}

// A WebSocket client refused for a drain hears 1013 with a reason that
// is valid UTF-8 (cut at a character), fits the frame and starts with
// when to retry.
func TestDrainedWebSocketCloseReason(t *testing.T) {
	t.Parallel()
	hs := serveAPI(t, &drainedTickets{}, api.Config{}, nil)
	for _, path := range []string{"/ws", "/ws/events"} {
		conn, _, err := websocket.DefaultDialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(hs.URL, "http")+path+"?player_id=a", nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second)) // bounds a hang; measures nothing
		_, _, err = conn.ReadMessage()
		conn.Close()
		ce, ok := err.(*websocket.CloseError)
		if !ok || ce.Code != websocket.CloseTryAgainLater {
			t.Fatalf("%s: %T %v, want a close 1013", path, err, err)
		}
		if !utf8.ValidString(ce.Text) || len(ce.Text) > 123 || !strings.HasPrefix(ce.Text, "retry after 30s: shard eu.gold is drained: サーバー") {
			t.Fatalf("%s: reason %q (%d bytes)", path, ce.Text, len(ce.Text))
		}
	}
}
