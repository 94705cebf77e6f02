package server

import (
	"flag"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
)

// reaskClock is the clock of a server's re-ask timers (Server.after) in
// these tests: a timer runs out only when the test moves the clock past
// it, so that no test waits BackfillReask.
type reaskClock struct {
	mu     sync.Mutex
	now    time.Duration
	timers []*reaskTimer
}

type reaskTimer struct {
	at   time.Duration
	f    func()
	done bool // stopped or run
}

// useReaskClock gives s's rooms a reaskClock; call it before s opens a
// room.
func useReaskClock(s *Server) *reaskClock {
	c := &reaskClock{}
	s.mu.Lock()
	s.after = c.after
	s.mu.Unlock()
	return c
}

func (c *reaskClock) after(d time.Duration, f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tm := &reaskTimer{at: c.now + d, f: f}
	c.timers = append(c.timers, tm)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		running := !tm.done
		tm.done = true
		return running
	}
}

// advance moves the clock by d and runs the timers that run out; each
// returns once its room has taken the expiry (or ended).
func (c *reaskClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now += d
	var due []func()
	for _, tm := range c.timers {
		if !tm.done && tm.at <= c.now {
			tm.done = true
			due = append(due, tm.f)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

// running is how many re-ask timers run.
func (c *reaskClock) running() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, tm := range c.timers {
		if !tm.done {
			n++
		}
	}
	return n
}

// roomSync returns once the room of c has handled everything it took
// before a message of c's: it answers that message after them.
func roomSync(t *testing.T, c *websocket.Conn) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"chat"}`)); err != nil {
		t.Fatal(err)
	}
	next(t, c, "error")
}

const testReask = time.Hour // on a reaskClock

// reaskServer runs a game server without Agones whose rooms re-ask on a
// reaskClock.
func reaskServer(t *testing.T) (*reaskClock, *httptest.Server) {
	t.Helper()
	s, hs := startServer(t, Config{BestOf: 7, ReconnectGrace: 100 * time.Millisecond, IdleTimeout: time.Hour, BackfillReask: testReask})
	return useReaskClock(s), hs
}

// twoVersusTwoLosesB2 plays a 2v2 that accepts backfill in room m1 until
// b2 is gone for good and the room asks for a player on team 2 (Ask 1).
func twoVersusTwoLosesB2(t *testing.T, hs *httptest.Server) map[string]*websocket.Conn {
	t.Helper()
	conns := map[string]*websocket.Conn{}
	for _, p := range []seated{{"a1", 0}, {"a2", 0}, {"b1", 1}, {"b2", 1}} {
		conns[p.name] = joinBackfill(t, hs, "m1", p.name, bfSeat(p.team, 2, 2))
		next(t, conns[p.name], "welcome")
	}
	next(t, conns["a1"], "start")
	conns["b2"].Close()
	next(t, conns["a1"], "player_gone")
	requestOf(t, hs, []play.Backfill{{MatchID: "m1", Ask: 1, Seats: []int{0, 1}}})
	return conns
}

// A request nobody fills (the player sent for the seat never joins:
// the matcher has claimed its id, so it is not filled again) is asked
// again under a new Ask once it has been open for BackfillReask, and
// again after as long; the player sent then takes the seat, and no
// timer is left.
func TestBackfillReasksAnUnfilledRequest(t *testing.T) {
	t.Parallel()
	clock, hs := reaskServer(t)
	conns := twoVersusTwoLosesB2(t, hs)
	clock.advance(testReask - time.Second)
	roomSync(t, conns["a1"])
	requestOf(t, hs, []play.Backfill{{MatchID: "m1", Ask: 1, Seats: []int{0, 1}}})
	clock.advance(time.Second)
	requestOf(t, hs, []play.Backfill{{MatchID: "m1", Ask: 2, Seats: []int{0, 1}}})
	clock.advance(testReask)
	requestOf(t, hs, []play.Backfill{{MatchID: "m1", Ask: 3, Seats: []int{0, 1}}})

	b3 := joinBackfill(t, hs, "m1", "b3", bfSeat(1, 2, 2))
	next(t, b3, "welcome")
	requestOf(t, hs, nil)
	if n := clock.running(); n != 0 {
		t.Fatalf("%d re-ask timers run with no request open", n)
	}
}

// A request filled before BackfillReask is not asked again: its timer
// stops, and the next request (b1 gone) takes the next Ask (1 b2 gone,
// 2 b3 seated, 3 b1 gone), none spent on the filled one.
func TestBackfillFilledRequestDoesNotReask(t *testing.T) {
	t.Parallel()
	clock, hs := reaskServer(t)
	conns := twoVersusTwoLosesB2(t, hs)
	clock.advance(testReask / 2)
	b3 := joinBackfill(t, hs, "m1", "b3", bfSeat(1, 2, 2))
	next(t, b3, "welcome")
	requestOf(t, hs, nil)
	if n := clock.running(); n != 0 {
		t.Fatalf("%d re-ask timers run after the request was filled", n)
	}
	clock.advance(testReask)
	roomSync(t, conns["a1"])
	requestOf(t, hs, nil)

	conns["b1"].Close()
	next(t, conns["a1"], "player_gone")
	requestOf(t, hs, []play.Backfill{{MatchID: "m1", Ask: 3, Seats: []int{0, 1}}})
}

// A change of the free seats is a new Ask, and BackfillReask counts from
// it: a1 gone half way through Ask 1's time gives Ask 2, which is not
// asked again when Ask 1's time is up, but only once its own is.
func TestBackfillSeatChangeRestartsTheReask(t *testing.T) {
	t.Parallel()
	clock, hs := reaskServer(t)
	conns := twoVersusTwoLosesB2(t, hs)
	clock.advance(testReask / 2)
	conns["a1"].Close()
	next(t, conns["a2"], "player_gone")
	requestOf(t, hs, []play.Backfill{{MatchID: "m1", Ask: 2, Seats: []int{1, 1}}})
	clock.advance(testReask / 2) // Ask 1's time is up
	roomSync(t, conns["a2"])
	requestOf(t, hs, []play.Backfill{{MatchID: "m1", Ask: 2, Seats: []int{1, 1}}})
	clock.advance(testReask / 2) // Ask 2's is
	requestOf(t, hs, []play.Backfill{{MatchID: "m1", Ask: 3, Seats: []int{1, 1}}})
	if n := clock.running(); n != 1 {
		t.Fatalf("%d re-ask timers run, want Ask 3's alone", n)
	}
}

// Under Agones the new Ask is written to the room's backfill annotation,
// which the allocator reads; the player sent under it takes the seat,
// joins the players List, and the annotation is cleared.
func TestAgonesBackfillReask(t *testing.T) {
	t.Parallel()
	s, hs, fake := startAgones(t, Config{BestOf: 7, ReconnectGrace: 100 * time.Millisecond, IdleTimeout: time.Hour, Reuse: true, BackfillReask: testReask})
	clock := useReaskClock(s)
	allocateRoom(t, fake, "m1", agones.Room{Mode: "2v2", Teams: [][]string{{"a1", "a2"}, {"b1", "b2"}}, AcceptsBackfill: true})
	conns := map[string]*websocket.Conn{}
	for i, p := range []string{"a1", "a2", "b1", "b2"} {
		conns[p] = joinBackfill(t, hs, "m1", p, bfSeat(i/2, 2, 2))
		next(t, conns[p], "welcome")
	}
	next(t, conns["a1"], "start")
	conns["b2"].Close()
	next(t, conns["a1"], "player_gone")
	backfillAnnotation(t, fake, "m1", `{"match_id":"m1","ask":1,"seats":[0,1]}`)

	clock.advance(testReask)
	backfillAnnotation(t, fake, "m1", `{"match_id":"m1","ask":2,"seats":[0,1]}`)
	requestOf(t, hs, []play.Backfill{{MatchID: "m1", Ask: 2, Seats: []int{0, 1}}})
	b3 := joinBackfill(t, hs, "m1", "b3", bfSeat(1, 2, 2))
	next(t, b3, "welcome")
	backfillAnnotation(t, fake, "m1", "")
	sortedPlayers(t, fake, "a1", "a2", "b1", "b3")
	if n := clock.running(); n != 0 {
		t.Fatalf("%d re-ask timers run with no request open", n)
	}
}

// -backfill-reask (BACKFILL_REASK) sets BackfillReask; unset, New makes
// it the default, the allocator's default join-token-ttl.
func TestBackfillReaskConfig(t *testing.T) {
	parse := func(args ...string) Config {
		t.Helper()
		var c Config
		fs := flag.NewFlagSet("game", flag.ContinueOnError)
		c.RegisterFlags(fs)
		if err := envflag.Parse(fs, args); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := parse("-backfill-reask=3m"); c.BackfillReask != 3*time.Minute {
		t.Fatalf("-backfill-reask=3m: %v", c.BackfillReask)
	}
	t.Setenv("BACKFILL_REASK", "20m")
	if c := parse(); c.BackfillReask != 20*time.Minute {
		t.Fatalf("BACKFILL_REASK=20m: %v", c.BackfillReask)
	}
	s, err := New(Config{JoinKeys: keys}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.BackfillReask != 10*time.Minute {
		t.Fatalf("default BackfillReask %v, want 10m", s.cfg.BackfillReask)
	}
}
