package server

import (
	"context"
	"log/slog"
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
