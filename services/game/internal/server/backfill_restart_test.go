package server

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk/sdktest"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// startBackfillRoom allocates match to teams (of two) as accepting
// backfill, joins its players and waits for the start.
// roomAskingForB2 is a 2v2 "m1" that accepts backfill, a1 and a2 against
// b1 and b2, whose b2 left for good and whose request for b2's seat the
// allocator has read (its annotation).
func roomAskingForB2(t *testing.T, hs *httptest.Server, fake *sdktest.Server) map[string]*websocket.Conn {
	t.Helper()
	conns := startBackfillRoom(t, hs, fake, "m1", []string{"a1", "a2"}, []string{"b1", "b2"})
	conns["b2"].Close()
	next(t, conns["a1"], "player_gone")
	backfillAnnotation(t, fake, "m1", `{"match_id":"m1","ask":1,"seats":[0,1]}`)
	return conns
}

func startBackfillRoom(t *testing.T, hs *httptest.Server, fake *sdktest.Server, match string, teams ...[]string) map[string]*websocket.Conn {
	t.Helper()
	allocateRoom(t, fake, match, agones.Room{Mode: "2v2", Teams: teams, AcceptsBackfill: true})
	conns := map[string]*websocket.Conn{}
	for i, team := range teams {
		for _, p := range team {
			conns[p] = joinBackfill(t, hs, match, p, bfSeat(i, len(teams), len(team)))
			next(t, conns[p], "welcome")
		}
	}
	next(t, conns[teams[0][0]], "start")
	return conns
}

// A process restarted in place reopens a room that accepts backfill from
// what the last one left: a player it let go stays gone (off the players
// List, refused), a request still open goes on under its Ask at once
// (m3), the seat of a player it backfilled is held for them for the
// grace (m1: b3 comes back; a stranger is refused meanwhile), and once
// the hold runs out asked for under a new, higher Ask (m2: d3 never
// comes back, d4 fills the seat). The players List stays who holds the
// seats throughout.
func TestAgonesBackfillAcrossARestart(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	first, hs, crash := runOn(t, fake, Config{BestOf: 7, ReconnectGrace: 100 * time.Millisecond, IdleTimeout: time.Hour, Reuse: true})
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	rooms := map[string][][]string{
		"m1": {{"a1", "a2"}, {"b1", "b2"}},
		"m2": {{"c1", "c2"}, {"d1", "d2"}},
		"m3": {{"e1", "e2"}, {"f1", "f2"}},
	}
	for _, m := range []string{"m1", "m2", "m3"} {
		conns := startBackfillRoom(t, hs, fake, m, rooms[m]...)
		gone, filler := rooms[m][1][1], map[string]string{"m1": "b3", "m2": "d3"}[m]
		conns[gone].Close()
		next(t, conns[rooms[m][0][0]], "player_gone")
		backfillAnnotation(t, fake, m, `{"match_id":"`+m+`","ask":1,"seats":[0,1]}`)
		if filler != "" {
			next(t, joinBackfill(t, hs, m, filler, bfSeat(1, 2, 2)), "resume")
			backfillAnnotation(t, fake, m, "")
		}
	}
	held := []string{"a1", "a2", "b1", "b3", "c1", "c2", "d1", "d3", "e1", "e2", "f1"}
	sortedPlayers(t, fake, held...)
	if n := len(first.Status().Backfill); n != 1 {
		t.Fatalf("%d requests before the restart, want m3's", n)
	}
	crash()

	_, hs2, _ := runOn(t, fake, Config{BestOf: 7, ReconnectGrace: 2 * time.Second, IdleTimeout: time.Hour, Reuse: true})
	requestOf(t, hs2, []play.Backfill{{MatchID: "m3", Ask: 1, Seats: []int{0, 1}}})
	if m := next(t, joinBackfill(t, hs2, "m1", "b2", bfSeat(1, 2, 2)), "error"); !strings.Contains(m.Error, "left this game") {
		t.Fatalf("b2, let go before the restart: %+v", m)
	}
	if m := next(t, joinBackfill(t, hs2, "m1", "r", bfSeat(1, 2, 2)), "error"); !strings.Contains(m.Error, "team 2 is full") {
		t.Fatalf("a stranger on the seat held for b3: %+v", m)
	}
	next(t, joinBackfill(t, hs2, "m1", "b3", bfSeat(1, 2, 2)), "welcome")
	for i, p := range []string{"a1", "a2", "b1"} {
		next(t, joinBackfill(t, hs2, "m1", p, bfSeat(i/2, 2, 2)), "welcome")
	}
	sortedPlayers(t, fake, held...)

	// m2's held seat: d3 never came back; asked for once the hold is
	// over, under an Ask above any the last process used.
	var m2 play.Backfill
	waitFor(t, func() bool {
		for _, b := range statusOf(t, hs2).Backfill {
			if b.MatchID == "m2" {
				m2 = b
			}
		}
		return m2.MatchID != ""
	}, "m2 never asked after the hold")
	if m2.Ask <= 1 || !slices.Equal(m2.Seats, []int{0, 1}) {
		t.Fatalf("m2's request after the restart %+v", m2)
	}
	backfillAnnotation(t, fake, "m2", agones.EncodeBackfill(m2))
	next(t, joinBackfill(t, hs2, "m2", "d4", bfSeat(1, 2, 2)), "welcome")
	sortedPlayers(t, fake, append(slices.Clone(held[:7]), "d4", "e1", "e2", "f1")...)
	backfillAnnotation(t, fake, "m2", "")
}

// A draining server asks for nobody: its rooms may be ended at the
// drain's deadline. /status lists no request and the keeper clears the
// annotation, while the room plays on.
func TestDrainingServerAsksForNobody(t *testing.T) {
	t.Parallel()
	s, hs, fake := startAgones(t, Config{BestOf: 7, ReconnectGrace: 100 * time.Millisecond, IdleTimeout: time.Hour, Reuse: true})
	conns := startBackfillRoom(t, hs, fake, "m1", []string{"a1", "a2"}, []string{"b1", "b2"})
	conns["b2"].Close()
	backfillAnnotation(t, fake, "m1", `{"match_id":"m1","ask":1,"seats":[0,1]}`)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Drain(ctx)
	}()
	backfillAnnotation(t, fake, "m1", "")
	requestOf(t, hs, nil)
	for p, mv := range map[string]string{"a1": "rock", "a2": "rock", "b1": "paper"} {
		move(t, conns[p], mv)
	}
	next(t, conns["a1"], "round") // the 2v1 plays on
	endRooms(s)
	<-drained
}

// A player the room let go for good stays gone across a restart in
// place even when another room of the server has them on the players
// List: b2, let go by m1 (b3 took the seat), is allocated to m2 here
// before the restart. The List is every room's, so it cannot say whom
// m1 let go: its kept seats do. Before, the next process took b2 for
// one of m1's seated players: b2 was admitted again, and b3, who held
// the seat, was refused (team 2 is full) and taken off the List.
func TestAgonesLetGoStaysGoneWhileAnotherRoomListsThem(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	cfg := Config{BestOf: 7, ReconnectGrace: 100 * time.Millisecond, IdleTimeout: time.Hour, Reuse: true}
	_, hs, crash := runOn(t, fake, cfg)
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	conns := roomAskingForB2(t, hs, fake)
	next(t, joinBackfill(t, hs, "m1", "b3", bfSeat(1, 2, 2)), "resume")
	backfillAnnotation(t, fake, "m1", "")
	sortedPlayers(t, fake, "a1", "a2", "b1", "b3")
	allocate(t, fake, "m2", []string{"b2"}, []string{"x"}) // b2 queued again
	sortedPlayers(t, fake, "a1", "a2", "b1", "b2", "b3", "x")
	for _, c := range conns {
		c.Close()
	}
	crash()

	cfg.ReconnectGrace = 2 * time.Second
	_, hs2, _ := runOn(t, fake, cfg)
	if m := first(t, joinBackfill(t, hs2, "m1", "b3", bfSeat(1, 2, 2))); m.Type != "welcome" {
		t.Fatalf("b3, who held b2's seat: %+v", m)
	}
	if m := first(t, joinBackfill(t, hs2, "m1", "b2", bfSeat(1, 2, 2))); !strings.Contains(m.Error, "left this game") {
		t.Fatalf("b2, let go by m1 before the restart: %+v", m)
	}
	sortedPlayers(t, fake, "a1", "a2", "b1", "b2", "b3", "x")
}
