package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// warnCounter counts the log lines at Warn and above.
type warnCounter struct{ n atomic.Int64 }

func (h *warnCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *warnCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.n.Add(1)
	}
	return nil
}
func (h *warnCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *warnCounter) WithGroup(string) slog.Handler      { return h }

// A seated player who sends as fast as it can and never reads had each
// message answered by its room's goroutine and, the answer dropped,
// logged (review of 2026-12-05: 452,371 frames in 3.2 s, 440,239 Warn
// lines). What a connection hands its room is rate-limited, and a
// connection's dropped answers are logged once.
func TestAPlayerFloodingItsRoomIsHeldBack(t *testing.T) {
	t.Parallel()
	logs := &warnCounter{}
	s, err := New(Config{JoinKeys: keys}, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	s.onEvent = func(_ string, ev event) {
		if ev.kind == evBad || ev.kind == evMove {
			handled.Add(1)
		}
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	a := join(t, hs, "m1", "mallory")
	_ = join(t, hs, "m1", "bob")
	const d = time.Second
	start := time.Now()
	sent := 0
	_ = a.SetWriteDeadline(start.Add(d))
	for time.Since(start) < d {
		if a.WriteMessage(websocket.TextMessage, []byte("x")) != nil {
			break
		}
		sent++
	}
	time.Sleep(200 * time.Millisecond)
	most := int64(messageBurst + messagesPerSecond*time.Since(start).Seconds() + 1)
	if n := handled.Load(); sent < 1000 || n > most {
		t.Fatalf("%d messages sent in %s: the room handled %d, want %d at most", sent, d, n, most)
	}
	if n := logs.n.Load(); n > 1 {
		t.Fatalf("%d Warn lines for one connection that does not read", n)
	}
}

// A player's allowance was its connection's: one reconnecting with its
// resume key got a fresh burst of 20 messages each time, and each join
// made the room tell the others (review of 2026-12-05). Its joins and
// messages, over all its connections, now spend one allowance.
func TestAPlayerReconnectingGetsNoFreshAllowance(t *testing.T) {
	t.Parallel()
	s, err := New(Config{JoinKeys: keys}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	s.onEvent = func(_ string, ev event) {
		if ev.kind == evBad || ev.kind == evMove || ev.kind == evJoin {
			handled.Add(1)
		}
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	next(t, join(t, hs, "m1", "mallory"), "welcome")
	_ = join(t, hs, "m1", "bob")
	key, _ := resumeKeys.Load(t.Name() + "/m1/mallory")
	tok := token(t, "m1", "mallory", time.Minute)
	start := time.Now()
	joins, refused := 0, 0
	for time.Since(start) < time.Second {
		c, res, err := dialResume(t, hs, "m1", tok, key.(string))
		if err != nil {
			if res == nil || res.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("rejoin %d: %v (%v)", joins, err, res)
			}
			refused++
			continue
		}
		joins++
		for range messageBurst {
			_ = c.WriteMessage(websocket.TextMessage, []byte("x"))
		}
	}
	time.Sleep(200 * time.Millisecond)
	most := int64(2 + messageBurst + messagesPerSecond*time.Since(start).Seconds() + 1) // bob's and mallory's first joins, then hers
	if n := handled.Load(); n > most || refused == 0 {
		t.Fatalf("%d rejoins (%d refused) in a second, each sending %d messages: the room handled %d joins and messages, want %d at most",
			joins, refused, messageBurst, n, most)
	}
}
