package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// followClient is a client of h whose waits between reconnections are
// recorded and not slept (so no test depends on the clock).
func followClient(t *testing.T, h http.Handler, tune ...func(*Config)) (*Client, *[]time.Duration) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := Config{BaseURL: srv.URL}
	for _, f := range tune {
		f(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	waits := &[]time.Duration{}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*waits = append(*waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	return c, waits
}

func eventStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

// statusEvent is an event of ticket t1 (assigned to a room, if assigned).
func statusEvent(id int, status string) string {
	var assignment string
	if status == "assigned" {
		assignment = `,"assignment":{"url":"http://game/play?room=r"}`
	}
	return fmt.Sprintf("id: %d\nevent: status\ndata: {\"ticket_id\":\"t1\",\"status\":%q%s}\n\n", id, status, assignment)
}

// A stream cut in the middle of an event is resumed with the id of the
// last whole event; the half event is never handed to the caller.
func TestFollowResumesAfterADropMidEvent(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	var lastIDs []string
	var mu sync.Mutex
	c, waits := followClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		eventStream(w)
		if conns.Add(1) == 1 {
			io.WriteString(w, ": ping\n\n"+statusEvent(1, "queued")+"id: 2\nevent: status\ndata: {\"ticket_id\":\"t1\",\"sta")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection drops
		}
		io.WriteString(w, statusEvent(2, "matched")+statusEvent(3, "assigned"))
	}))
	var seen []events.Status
	v, err := c.Follow(t.Context(), "t1", func(v ticketapi.View) { seen = append(seen, v.Status) })
	if err != nil || v.Status != events.StatusAssigned {
		t.Fatalf("follow: %+v %v", v, err)
	}
	if fmt.Sprint(seen) != "[queued matched assigned]" || fmt.Sprint(lastIDs) != "[ 1]" || len(*waits) != 1 {
		t.Fatalf("saw %v, Last-Event-IDs sent %q, waits %v", seen, lastIDs, *waits)
	}
}

// A refusal with Retry-After is waited out at least that long (capped
// by MaxRetryAfter) and up to half again, the backoff's jitter
// notwithstanding.
func TestFollowWaitsRetryAfter(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	c, waits := followClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch conns.Add(1) {
		case 1:
			answer(w, 429, "5", `{"error":"too many open event streams"}`)
		case 2:
			answer(w, 503, "100000", `{"error":"ticket service unavailable"}`)
		default:
			eventStream(w)
			io.WriteString(w, statusEvent(3, "expired"))
		}
	}), func(cfg *Config) { cfg.MaxRetryAfter = 20 * time.Second })
	v, err := c.Follow(t.Context(), "t1", nil)
	if err != nil || v.Status != events.StatusExpired {
		t.Fatalf("follow: %+v %v", v, err)
	}
	// Each up to half again, for clients told alike not to come back at once.
	if w := *waits; len(w) != 2 || w[0] < 5*time.Second || w[0] > 7500*time.Millisecond || w[1] < 20*time.Second || w[1] > 30*time.Second {
		t.Fatalf("waited %v, want 5s then the 20s cap, each and up to half again", *waits)
	}
}

func answer(w http.ResponseWriter, status int, retryAfter, body string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// The backoff doubles from its floor to its ceiling, jittered within the
// upper half, and starts again once a stream brought an event.
func TestFollowBackoff(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	c, waits := followClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		eventStream(w)
		switch n := conns.Add(1); {
		case n == 4:
			io.WriteString(w, statusEvent(1, "queued"))
		case n == 6:
			io.WriteString(w, statusEvent(3, "assigned"))
		}
	}), func(cfg *Config) { cfg.MinBackoff, cfg.MaxBackoff = time.Second, 3*time.Second })
	if _, err := c.Follow(t.Context(), "t1", nil); err != nil {
		t.Fatal(err)
	}
	ceil := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, time.Second, 2 * time.Second}
	if len(*waits) != len(ceil) {
		t.Fatalf("waits %v", *waits)
	}
	for i, w := range *waits {
		if w < ceil[i]/2 || w > ceil[i] {
			t.Errorf("wait %d: %s, want %s-%s", i, w, ceil[i]/2, ceil[i])
		}
	}
}

// What asking again cannot mend ends Follow at once with its reason.
func TestFollowStopsOnWhatRetryingCannotMend(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want error
	}{
		{"not found", func(w http.ResponseWriter, _ *http.Request) { answer(w, 404, "", `{"error":"ticket not found"}`) }, ErrNotFound},
		{"not an event stream", func(w http.ResponseWriter, _ *http.Request) { answer(w, 200, "", `{"status":"queued"}`) }, ErrMalformed},
		{"data not JSON", func(w http.ResponseWriter, _ *http.Request) {
			eventStream(w)
			io.WriteString(w, "id: 1\nevent: status\ndata: {not json\n\n")
		}, ErrMalformed},
		{"an id Last-Event-ID cannot take", func(w http.ResponseWriter, _ *http.Request) {
			eventStream(w)
			io.WriteString(w, strings.Replace(statusEvent(1, "queued"), "id: 1", "id: 99", 1))
		}, ErrMalformed},
		{"an unknown status", func(w http.ResponseWriter, _ *http.Request) {
			eventStream(w)
			io.WriteString(w, statusEvent(1, "teleported"))
		}, ErrMalformed},
		{"an event over the bound", func(w http.ResponseWriter, _ *http.Request) {
			eventStream(w)
			io.WriteString(w, "id: 1\nevent: status\n")
			for range 64 { // 64 lines of 512 bytes: no line is long, the event is
				io.WriteString(w, "data: "+strings.Repeat("x", 512)+"\n")
			}
		}, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, waits := followClient(t, tc.h, func(cfg *Config) { cfg.MaxEventBytes = 4096 })
			_, err := c.Follow(t.Context(), "t1", nil)
			if !errors.Is(err, tc.want) || len(*waits) != 0 {
				t.Fatalf("got %v after %d waits, want %v at once", err, len(*waits), tc.want)
			}
		})
	}
}

// A server that sends an endless line costs the client its bound, not
// what it sends: the line is refused once it passes MaxEventBytes.
func TestEndlessLineIsBounded(t *testing.T) {
	t.Parallel()
	r := newSSEReader(endless{}, 16<<10)
	if _, err := r.next(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
	if cap(r.line) > 2*(16<<10)+8<<10 {
		t.Fatalf("kept %d bytes for a 16 KiB bound", cap(r.line))
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// A server that never answers, or goes silent mid-stream, is given up on
// after IdleTimeout and the stream resumed; the caller's context ends
// Follow whatever the server does.
func TestFollowGivesUpOnASilentServer(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	c, _ := followClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := conns.Add(1)
		if n == 2 {
			eventStream(w) // headers, then nothing
		}
		if n == 3 {
			cancel() // enough: the caller gives up
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}), func(cfg *Config) { cfg.IdleTimeout = 20 * time.Millisecond })
	defer close(release)
	_, err := c.Follow(ctx, "t1", nil)
	if !errors.Is(err, context.Canceled) || conns.Load() != 3 {
		t.Fatalf("got %v after %d connections", err, conns.Load())
	}
}

// Cancelling the context ends a Follow that waits between attempts.
func TestFollowCancelledDuringBackoff(t *testing.T) {
	t.Parallel()
	asked := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		answer(w, 503, "3600", `{"error":"ticket service unavailable"}`)
		asked <- struct{}{}
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c.Follow(ctx, "t1", nil)
		done <- err
	}()
	<-asked // refused with an hour's Retry-After: it waits
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}
