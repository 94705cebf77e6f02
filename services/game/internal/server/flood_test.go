package server

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
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
	handled, hs := floodServer(t)
	next(t, join(t, hs, "m1", "mallory"), "welcome")
	_ = join(t, hs, "m1", "bob")
	key, _ := resumeKeys.Load(t.Name() + "/m1/mallory")
	tok := token(t, "m1", "mallory", time.Minute)
	start := time.Now()
	joins, refused := 1, 0 // her first
	for time.Since(start) < time.Second {
		c, _, err := dialResume(t, hs, "m1", tok, key.(string))
		if err != nil {
			t.Fatalf("rejoin %d: %v", joins, err)
		}
		if first(t, c).Type != "welcome" {
			refused++
			continue
		}
		joins++
		for range messageBurst {
			_ = c.WriteMessage(websocket.TextMessage, []byte("x"))
		}
	}
	time.Sleep(200 * time.Millisecond)
	most := int64(messageBurst + messagesPerSecond*time.Since(start).Seconds() + 1)
	if n := int64(joins) + handled.Load(); n > most || refused == 0 {
		t.Fatalf("%d joins of %d in a second, each sending %d messages: %d joins and messages handled, want %d at most",
			joins, joins+refused, messageBurst, n, most)
	}
}

// A token copied from the play URL does not take its player's seat (the
// resume key guards it), and must not spend its player's allowance
// either: dials with it and a wrong key, refused by the room, left the
// seated player unable to move or come back (review of a133cb4).
func TestACopiedTokenCannotSpendItsPlayersAllowance(t *testing.T) {
	t.Parallel()
	_, hs := floodServer(t)
	a, _ := startGame(t, hs, "m1", "alice", "bob")
	key, _ := resumeKeys.Load(t.Name() + "/m1/alice")
	tok := token(t, "m1", "alice", time.Minute)
	for i := range 3 * messageBurst {
		c, _, err := dialResume(t, hs, "m1", tok, strings.Repeat("0", 32))
		if err != nil {
			t.Fatalf("copied token, dial %d: %v", i, err)
		}
		if m := first(t, c); m.Type != "error" {
			t.Fatalf("a copied token with a wrong key was answered %+v", m)
		}
		c.Close()
	}
	a.Close()
	back, _, err := dialResume(t, hs, "m1", tok, key.(string))
	if err != nil {
		t.Fatal(err)
	}
	if m := first(t, back); m.Type != "welcome" {
		t.Fatalf("alice, back with her key after the copied token's dials: %+v", m)
	}
}

// floodServer is a game server counting the players' messages its rooms
// were handed (moves and bad messages).
func floodServer(t *testing.T) (*atomic.Int64, *httptest.Server) {
	t.Helper()
	s, err := New(Config{JoinKeys: keys}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	handled := &atomic.Int64{}
	s.onEvent = func(_ string, ev event) {
		if ev.kind == evBad || ev.kind == evMove {
			handled.Add(1)
		}
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return handled, hs
}

// first is the first message c is sent.
func first(t *testing.T, c *websocket.Conn) message {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var m message
	if err := c.ReadJSON(&m); err != nil {
		t.Fatalf("first message: %v", err)
	}
	return m
}
