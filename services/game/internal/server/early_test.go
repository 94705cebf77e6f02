package server

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// earlySeat is team of a free-for-all of four that accepts backfill and
// started early with three players, as the allocator signs it for the
// match's players.
func earlySeat(team int) jointoken.Seat {
	s := bfSeat(team, 4, 1)
	s.Starts = 3
	return s
}

// earlyRoom is that free-for-all's room annotation: three players, the
// fourth team empty.
func earlyRoom(players ...string) agones.Room {
	return agones.Room{Mode: "ffa4", Teams: [][]string{{players[0]}, {players[1]}, {players[2]}, {}}, TeamSize: 1, AcceptsBackfill: true}
}

// joinEarly joins the three players of an early free-for-all room, the
// first told the game starts with seats players, and returns their
// connections once they have heard the start (its message from the
// first).
func joinEarly(t *testing.T, dial func(player string, team int) *websocket.Conn, seats int, players ...string) (map[string]*websocket.Conn, message) {
	t.Helper()
	conns := map[string]*websocket.Conn{}
	for i, p := range players {
		conns[p] = dial(p, i)
		next(t, conns[p], "welcome")
		if i == 0 {
			if m := next(t, conns[p], "waiting"); m.Seats != seats {
				t.Fatalf("waiting %+v: the game starts with %d", m, seats)
			}
		}
	}
	start := next(t, conns[players[0]], "start")
	for _, p := range players[1:] {
		next(t, conns[p], "start")
	}
	return conns, start
}

// playEarlyToTheEnd plays the best of 3 of x, y, z and w, who filled
// the fourth seat: x wins every round.
func playEarlyToTheEnd(t *testing.T, conns map[string]*websocket.Conn) {
	t.Helper()
	for range 3 {
		for p, mv := range map[string]string{"x": "rock", "y": "scissors", "z": "scissors", "w": "scissors"} {
			move(t, conns[p], mv)
		}
		next(t, conns["w"], "round")
	}
	if m := next(t, conns["w"], "over"); !slices.Equal(m.Winners, []string{"x"}) || m.Score["x"] != 9 || m.Score["w"] != 0 {
		t.Fatalf("over %+v", m)
	}
}

// Under Agones: a free-for-all of four allocated with three players
// (TeamSize 1, the fourth team empty) starts once the three are in, as
// a free-for-all, and asks at once for one player on team 4; a backfill
// token of another shape is refused, one of the room's full shape is
// admitted to the free seat, the request is cleared and the players List
// follows; the four play to the end.
func TestAgonesEarlyFreeForAll(t *testing.T) {
	t.Parallel()
	_, hs, fake := startAgones(t, Config{BestOf: 3, ReconnectGrace: time.Minute, IdleTimeout: time.Hour, Reuse: true})
	allocateRoom(t, fake, "f1", earlyRoom("x", "y", "z"))
	conns, start := joinEarly(t, func(p string, team int) *websocket.Conn {
		return joinBackfill(t, hs, "f1", p, earlySeat(team))
	}, 3, "x", "y", "z")
	if !start.FreeForAll || !reflect.DeepEqual(start.Teams, [][]string{{"x"}, {"y"}, {"z"}, {}}) {
		t.Fatalf("start %+v", start)
	}
	backfillAnnotation(t, fake, "f1", `{"match_id":"f1","ask":1,"seats":[0,0,0,1]}`)
	requestOf(t, hs, []play.Backfill{{MatchID: "f1", Ask: 1, Seats: []int{0, 0, 0, 1}}})
	sortedPlayers(t, fake, "x", "y", "z")

	refusedWith(t, hs, "f1", seatedToken(t, "f1", "w", bfSeat(2, 3, 1), time.Now().Add(time.Minute)), "seat")
	refusedWith(t, hs, "f1", seatedToken(t, "f1", "w", bfSeat(3, 4, 2), time.Now().Add(time.Minute)), "seat")
	conns["w"] = joinBackfill(t, hs, "f1", "w", bfSeat(3, 4, 1))
	next(t, conns["w"], "welcome")
	if m := next(t, conns["w"], "resume"); !reflect.DeepEqual(m.Teams, [][]string{{"x"}, {"y"}, {"z"}, {"w"}}) || !m.FreeForAll {
		t.Fatalf("w's resume %+v", m)
	}
	backfillAnnotation(t, fake, "f1", "")
	requestOf(t, hs, nil)
	sortedPlayers(t, fake, "w", "x", "y", "z")
	playEarlyToTheEnd(t, conns)
	sortedPlayers(t, fake)
}

// Without Agones the tokens' Starts shape the room: the free-for-all of
// four starts with its three players, asks in /status for team 4 at
// once, admits a backfill token (Starts 0) there and asks no more. A
// token of the room's match with another Starts, or a full room's
// token without backfill, is refused.
func TestEarlyFreeForAllFromTokens(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{BestOf: 3, ReconnectGrace: time.Minute, IdleTimeout: time.Hour})
	conns, start := joinEarly(t, func(p string, team int) *websocket.Conn {
		return joinBackfill(t, hs, "f1", p, earlySeat(team))
	}, 3, "x", "y", "z")
	if !start.FreeForAll || !reflect.DeepEqual(start.Teams, [][]string{{"x"}, {"y"}, {"z"}, {}}) {
		t.Fatalf("start %+v", start)
	}
	requestOf(t, hs, []play.Backfill{{MatchID: "f1", Ask: 1, Seats: []int{0, 0, 0, 1}}})

	other := earlySeat(3)
	other.Starts = 2
	refusedWith(t, hs, "f1", seatedToken(t, "f1", "w", other, time.Now().Add(time.Minute)), "seat")
	refusedWith(t, hs, "f1", seatedToken(t, "f1", "w", jointoken.Seat{Team: 3, Teams: 4, TeamSize: 1}, time.Now().Add(time.Minute)), "seat")
	refusedWith(t, hs, "f1", seatedToken(t, "f1", "w", bfSeat(3, 5, 1), time.Now().Add(time.Minute)), "seat")

	conns["w"] = joinBackfill(t, hs, "f1", "w", bfSeat(3, 4, 1))
	next(t, conns["w"], "welcome")
	if m := next(t, conns["w"], "resume"); !reflect.DeepEqual(m.Teams, [][]string{{"x"}, {"y"}, {"z"}, {"w"}}) {
		t.Fatalf("w's resume %+v", m)
	}
	requestOf(t, hs, nil)
	if m := next(t, joinBackfill(t, hs, "f1", "v", bfSeat(3, 4, 1)), "error"); !strings.Contains(m.Error, "full") {
		t.Fatalf("v on w's seat: %+v", m)
	}
	playEarlyToTheEnd(t, conns)
}

// The first token of a match that starts early may come from any of its
// players: a room opened by a token that says every seat (Starts 0, no
// backfill) refuses the early room's tokens, and the reverse.
func TestEarlyTokenShapeIsTheRoomsShape(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{BestOf: 3, IdleTimeout: time.Hour})
	next(t, joinSeated(t, hs, "full", "a", jointoken.Seat{Team: 0, Teams: 4, TeamSize: 1}, time.Minute), "waiting")
	early := earlySeat(1)
	early.AcceptsBackfill = false
	refusedWith(t, hs, "full", seatedToken(t, "full", "b", early, time.Now().Add(time.Minute)), "seat")
	next(t, joinSeated(t, hs, "early", "a", early, time.Minute), "waiting")
	refusedWith(t, hs, "early", seatedToken(t, "early", "b", jointoken.Seat{Team: 1, Teams: 4, TeamSize: 1}, time.Now().Add(time.Minute)), "seat")
	// A backfill token in a room that does not accept backfill.
	refusedWith(t, hs, "early", seatedToken(t, "early", "b", bfSeat(3, 4, 1), time.Now().Add(time.Minute)), "does not accept backfill")
}

// Without Agones a room's Starts comes from its match's tokens alone: a
// backfill token carries none (the allocator signs it for a game under
// way). After a restart the player who filled a free seat may be the
// first back: the room then waits for every seat until a token of its
// match says how many its game starts with, and from then on starts
// with them and refuses a token that says another number.
func TestEarlyRoomOpenedByABackfillToken(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{BestOf: 3, ReconnectGrace: time.Minute, IdleTimeout: time.Hour})
	w := joinBackfill(t, hs, "f1", "w", bfSeat(3, 4, 1))
	next(t, w, "welcome")
	if m := next(t, w, "waiting"); m.Seats != 4 {
		t.Fatalf("waiting %+v: before a match token the game waits for every seat", m)
	}
	x := joinBackfill(t, hs, "f1", "x", earlySeat(0))
	next(t, x, "welcome")
	if m := next(t, w, "waiting"); m.Seats != 3 {
		t.Fatalf("waiting %+v: x's token says the game starts with 3", m)
	}
	other := earlySeat(2)
	other.Starts = 2
	if m := next(t, joinBackfill(t, hs, "f1", "v", other), "error"); !strings.Contains(m.Error, "seat") {
		t.Fatalf("a token starting with 2 in a room starting with 3: %+v", m)
	}
	y := joinBackfill(t, hs, "f1", "y", earlySeat(1))
	next(t, y, "welcome")
	if m := next(t, w, "start"); !m.FreeForAll || !reflect.DeepEqual(m.Teams, [][]string{{"x"}, {"y"}, {}, {"w"}}) {
		t.Fatalf("start %+v", m)
	}
}
