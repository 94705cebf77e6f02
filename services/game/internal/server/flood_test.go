package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
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

// A player coming back made the room send every other player its whole
// state (players, teams, score): a player looping reconnects with its
// resume key, within its allowance, cost a room of n players n times
// that state each time, O(n²) bytes (review of 2026-12-05: 2 teams of
// 50, 35 reconnects in 3 s, 25.8 MB). The player back gets the state;
// the others, a line that they are back, as long before the game starts
// (none) as during it.
func TestAPlayerComingBackCostsTheOthersALine(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{BestOf: 7, ReconnectGrace: time.Minute, IdleTimeout: time.Hour})
	const size, back = 10, 8 // players a team; times mallory comes back
	seat := func(team int) jointoken.Seat { return jointoken.Seat{Team: team, Teams: 2, TeamSize: size} }
	conns := map[string]*websocket.Conn{}
	comeBack := func() {
		t.Helper()
		for range back {
			c := joinSeated(t, hs, "m1", "mallory", seat(0), time.Minute)
			next(t, c, "welcome")
			want := "waiting"
			if len(conns) == 2*size {
				want = "resume"
			}
			if m := first(t, c); m.Type != want || len(m.Players) != len(conns) {
				t.Fatalf("mallory back: %+v, want %s naming the %d players", m, want, len(conns))
			}
		}
	}
	// bob hears nothing while the room waits, and a line a time once
	// the game is on; then his own move, the last thing the room said.
	heard := func(wantEach int) {
		t.Helper()
		move(t, conns["bob"], "rock")
		var n, bytes int
		_ = conns["bob"].SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			_, data, err := conns["bob"].ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			var m message
			_ = json.Unmarshal(data, &m)
			if m.Type == "moved" || m.Type == "error" && strings.Contains(m.Error, "not started") {
				break
			}
			n, bytes = n+1, bytes+len(data)
		}
		if n > wantEach*back || bytes > wantEach*back*48 {
			t.Fatalf("bob heard %d messages, %d bytes, of mallory's %d returns; want %d a return, of 48 bytes at most",
				n, bytes, back, wantEach)
		}
	}
	players := []string{"mallory", "bob"}
	for i := len(players); i < 2*size; i++ {
		players = append(players, fmt.Sprint("p", i))
	}
	for i, p := range players {
		conns[p] = joinSeated(t, hs, "m1", p, seat(i%2), time.Minute)
		next(t, conns[p], "welcome")
		if p == "bob" {
			next(t, conns["bob"], "waiting")
			comeBack()
			heard(0)
		}
	}
	next(t, conns["bob"], "start")
	comeBack()
	heard(1)
}

// A broadcast was encoded for each player it went to: a room of n
// players encoded each round, score and all, n times. It is encoded
// once. (Not parallel: AllocsPerRun counts the process's allocations.)
func TestBroadcastEncodesOnce(t *testing.T) {
	r := newRoom("m1", seating{}, Config{BestOf: 3}, slog.New(slog.DiscardHandler))
	const players = 50
	score := map[string]int{}
	for i := range players {
		p := fmt.Sprint("p", i)
		c := newClient(p, "", nil)
		c.send = make(chan []byte, 1)
		r.clients[p], score[p] = c, i
	}
	m := message{Type: "round", Score: score}
	once := testing.AllocsPerRun(20, func() { encode(m) })
	allocs := testing.AllocsPerRun(20, func() {
		r.broadcast(m)
		for _, c := range r.clients {
			<-c.send
		}
	})
	if allocs > 2*once {
		t.Fatalf("a broadcast to %d players made %.0f allocations, an encoding %.0f: encoded for each", players, allocs, once)
	}
}
