package server

import (
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// A process restarted in place reopens the rooms of free-for-alls of
// four that started early with three players (earlyRoom) from what the
// last one left. The seat the allocation left empty was never anyone's:
//   - r1 had started and asked for it: the request goes on under its Ask
//     at once, and the game starts again when the three are back, the
//     seat still free (w1 then fills it);
//   - r2 had started and w2 had filled it: it is held for w2 for the
//     grace (a stranger is refused), and w2 comes back;
//   - r3 had not started: it asks for nobody until its three are back
//     and its game starts, then at once.
//
// The players List stays who holds the seats throughout.
func TestAgonesEarlyRoomAcrossARestart(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	cfg := Config{BestOf: 3, ReconnectGrace: 2 * time.Second, IdleTimeout: time.Hour, Reuse: true}
	_, hs, crash := runOn(t, fake, cfg)
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	dialer := func(hs *httptest.Server, match string) func(string, int) *websocket.Conn {
		return func(p string, team int) *websocket.Conn {
			return joinBackfill(t, hs, match, p, earlySeat(team))
		}
	}
	for _, m := range []string{"r1", "r2", "r3"} {
		allocateRoom(t, fake, m, earlyRoom("x"+m[1:], "y"+m[1:], "z"+m[1:]))
	}
	joinEarly(t, dialer(hs, "r1"), 3, "x1", "y1", "z1")
	joinEarly(t, dialer(hs, "r2"), 3, "x2", "y2", "z2")
	// The allocator learns of a request from its annotation alone: w2
	// comes once it is written.
	backfillAnnotation(t, fake, "r2", `{"match_id":"r2","ask":1,"seats":[0,0,0,1]}`)
	next(t, joinBackfill(t, hs, "r2", "w2", bfSeat(3, 4, 1)), "resume")
	next(t, dialer(hs, "r3")("x3", 0), "waiting")
	backfillAnnotation(t, fake, "r1", `{"match_id":"r1","ask":1,"seats":[0,0,0,1]}`)
	backfillAnnotation(t, fake, "r2", "")
	held := []string{"w2", "x1", "x2", "x3", "y1", "y2", "y3", "z1", "z2", "z3"}
	sortedPlayers(t, fake, held...)
	crash()

	_, hs2, _ := runOn(t, fake, cfg)
	hs = hs2
	requestOf(t, hs2, []play.Backfill{{MatchID: "r1", Ask: 1, Seats: []int{0, 0, 0, 1}}})
	sortedPlayers(t, fake, held...)

	// r1: the three start again; the free seat is w1's to take.
	conns, start := joinEarly(t, dialer(hs, "r1"), 3, "x1", "y1", "z1")
	if !start.FreeForAll || !reflect.DeepEqual(start.Teams, [][]string{{"x1"}, {"y1"}, {"z1"}, {}}) {
		t.Fatalf("r1's start again %+v", start)
	}
	conns["w1"] = joinBackfill(t, hs2, "r1", "w1", bfSeat(3, 4, 1))
	next(t, conns["w1"], "resume")
	backfillAnnotation(t, fake, "r1", "")
	sortedPlayers(t, fake, append([]string{"w1"}, held...)...)

	// r2: the seat w2 filled is held for w2.
	if m := next(t, joinBackfill(t, hs2, "r2", "s", bfSeat(3, 4, 1)), "error"); !strings.Contains(m.Error, "team 4 is full") {
		t.Fatalf("a stranger on the seat held for w2: %+v", m)
	}
	next(t, joinBackfill(t, hs2, "r2", "w2", bfSeat(3, 4, 1)), "welcome")
	_, start2 := joinEarly(t, dialer(hs, "r2"), 4, "x2", "y2", "z2")
	if !reflect.DeepEqual(start2.Teams, [][]string{{"x2"}, {"y2"}, {"z2"}, {"w2"}}) {
		t.Fatalf("r2's start again %+v", start2)
	}

	// r3 asks once its game starts.
	joinEarly(t, dialer(hs, "r3"), 3, "x3", "y3", "z3")
	requestOf(t, hs2, []play.Backfill{{MatchID: "r3", Ask: 1, Seats: []int{0, 0, 0, 1}}})
	backfillAnnotation(t, fake, "r3", `{"match_id":"r3","ask":1,"seats":[0,0,0,1]}`)
	sortedPlayers(t, fake, append([]string{"w1"}, held...)...)
}

// A seat of an early room that the last process had backfilled is
// held for its player only for the grace: the game waits for them, and
// once the hold runs out starts with the match's three and asks for the
// seat again, under an Ask above any the last process used.
func TestAgonesEarlyRoomStartsWhenTheHoldRunsOut(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	_, hs, crash := runOn(t, fake, Config{BestOf: 3, ReconnectGrace: time.Minute, IdleTimeout: time.Hour, Reuse: true})
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	allocateRoom(t, fake, "r1", earlyRoom("x", "y", "z"))
	dial := func(hs *httptest.Server) func(string, int) *websocket.Conn {
		return func(p string, team int) *websocket.Conn { return joinBackfill(t, hs, "r1", p, earlySeat(team)) }
	}
	joinEarly(t, dial(hs), 3, "x", "y", "z")
	backfillAnnotation(t, fake, "r1", `{"match_id":"r1","ask":1,"seats":[0,0,0,1]}`)
	next(t, joinBackfill(t, hs, "r1", "w", bfSeat(3, 4, 1)), "resume")
	backfillAnnotation(t, fake, "r1", "")
	sortedPlayers(t, fake, "w", "x", "y", "z")
	crash()

	_, hs2, _ := runOn(t, fake, Config{BestOf: 3, ReconnectGrace: 300 * time.Millisecond, IdleTimeout: time.Hour, Reuse: true})
	conns, start := joinEarly(t, dial(hs2), 4, "x", "y", "z")
	if !reflect.DeepEqual(start.Teams, [][]string{{"x"}, {"y"}, {"z"}, {}}) {
		t.Fatalf("start after the hold %+v", start)
	}
	var req play.Backfill
	waitFor(t, func() bool {
		if b := statusOf(t, hs2).Backfill; len(b) == 1 {
			req = b[0]
		}
		return req.MatchID != ""
	}, "the seat never asked for after the hold")
	if req.Ask <= 1 || !reflect.DeepEqual(req.Seats, []int{0, 0, 0, 1}) {
		t.Fatalf("request after the hold %+v", req)
	}
	sortedPlayers(t, fake, "x", "y", "z")
	for p, mv := range map[string]string{"x": "rock", "y": "scissors", "z": "scissors"} {
		move(t, conns[p], mv)
	}
	next(t, conns["x"], "round") // three play on
}

// After a restart in place a full room is seated as an early one:
// the game of a 2v2 that had let b2 go and asked for the seat starts
// again once a1, a2 and b1 are back, 2v1 as it played before the
// restart, while the request goes on under its Ask.
func TestAgonesRestartedRoomStartsWithoutTheSeatItAskedFor(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	cfg := Config{BestOf: 3, ReconnectGrace: 100 * time.Millisecond, IdleTimeout: time.Hour, Reuse: true}
	_, hs, crash := runOn(t, fake, cfg)
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	roomAskingForB2(t, hs, fake)
	sortedPlayers(t, fake, "a1", "a2", "b1")
	crash()

	_, hs2, _ := runOn(t, fake, cfg)
	var first *websocket.Conn
	for i, p := range []string{"a1", "a2", "b1"} {
		c := joinBackfill(t, hs2, "m1", p, bfSeat(i/2, 2, 2))
		next(t, c, "welcome")
		if first == nil {
			first = c
			if m := next(t, c, "waiting"); m.Seats != 3 {
				t.Fatalf("waiting %+v: the game starts with 3", m)
			}
		}
	}
	if m := next(t, first, "start"); !reflect.DeepEqual(m.Teams, [][]string{{"a1", "a2"}, {"b1"}}) {
		t.Fatalf("start again %+v", m)
	}
	requestOf(t, hs2, []play.Backfill{{MatchID: "m1", Ask: 1, Seats: []int{0, 1}}})
}

// A game is a free-for-all by its room's shape (teams of one seat), not
// by who sits in it: a 2v2v2 that let a2, b2 and c2 go before a restart
// in place starts again with one player a team, as teams of two with
// free seats, not as a free-for-all.
func TestAgonesRestartedTeamsStayTeams(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	cfg := Config{BestOf: 3, ReconnectGrace: 100 * time.Millisecond, IdleTimeout: time.Hour, Reuse: true}
	_, hs, crash := runOn(t, fake, cfg)
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	conns := startBackfillRoom(t, hs, fake, "m1", []string{"a1", "a2"}, []string{"b1", "b2"}, []string{"c1", "c2"})
	for _, p := range []string{"a2", "b2", "c2"} {
		conns[p].Close()
		next(t, conns["a1"], "player_gone")
	}
	backfillAnnotation(t, fake, "m1", `{"match_id":"m1","ask":3,"seats":[1,1,1]}`)
	sortedPlayers(t, fake, "a1", "b1", "c1")
	crash()

	_, hs2, _ := runOn(t, fake, cfg)
	var first *websocket.Conn
	for i, p := range []string{"a1", "b1", "c1"} {
		c := joinBackfill(t, hs2, "m1", p, bfSeat(i, 3, 2))
		next(t, c, "welcome")
		if first == nil {
			first = c
		}
	}
	if m := next(t, first, "start"); m.FreeForAll || !reflect.DeepEqual(m.Teams, [][]string{{"a1"}, {"b1"}, {"c1"}}) {
		t.Fatalf("2v2v2 start again %+v", m)
	}
}
