package allocator

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// fillSeats is match id filling room r1 with a player for each seat of
// seats (per team).
func fillSeats(id string, seats []int) events.Match {
	m := events.Match{MatchID: id, Mode: "2v2", Region: "eu", Tier: "gold", Backfill: &events.MatchBackfill{BackfillID: "r1-b1", MatchID: "r1"}}
	for team, n := range seats {
		for i := range n {
			p := fmt.Sprintf("%s-%d-%d", id, team, i)
			m.Tickets = append(m.Tickets, events.MatchTicket{TicketID: "t-" + p, Players: []string{p}, Team: team})
		}
	}
	return m
}

// TestHostileRoomAskingForEverySeatAgainIsBounded: gs-1, compromised,
// shows no one seated (as under Agones) and asks for every seat of its
// 2v2 room r1 again after each promise ends. With a turnover of 2 the
// room is sent 8 players over its life: the request that would pass it
// is cut to what is left ({2,1}, not {2,2}), the next is not published,
// and a fill is refused (requeued) whoever publishes it.
func TestHostileRoomAskingForEverySeatAgainIsBounded(t *testing.T) {
	t.Parallel()
	e := newSeatedEnv(t)
	e.rq.rooms.turnover = 2
	asked := [][]int{{1, 0}, {2, 2}, {2, 2}, {2, 2}}
	want := [][]int{{1, 0}, {2, 2}, {2, 1}}
	for i, seats := range asked {
		e.src.set(play.Backfill{MatchID: "r1", Ask: i + 1, Seats: seats})
		e.rq.poll(t.Context())
		if i >= len(want) {
			break
		}
		req := e.request(t, i+1)
		if !slices.Equal(req.Seats, want[i]) {
			t.Fatalf("request %d: seats %v, want %v", i+1, req.Seats, want[i])
		}
		if err := e.fill(fillSeats(fmt.Sprintf("f%d", i), req.Seats)); err != nil {
			t.Fatalf("fill %d: %v", i+1, err)
		}
		e.wait(10*time.Minute + promiseMargin) // the promise ends; the room asks again
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(e.published()); n != len(want) {
		t.Fatalf("%d requests published, want %d: the room was sent all it may be", n, len(want))
	}
	if n := testutil.ToFloat64(e.rq.outcomes.WithLabelValues("refused_spent")); n != 1 {
		t.Fatalf("refused_spent counted %v times, want 1", n)
	}
	err := e.fill(fillSeats("f9", []int{1, 0}))
	if !errors.Is(err, errRoomSpent) || !errors.Is(err, errRoomGone) {
		t.Fatalf("a fill past the room's turnover: %v, want it refused and requeued", err)
	}
	room, _, err := e.recs.room(t.Context(), "r1")
	if err != nil || room.Backfilled != 8 {
		t.Fatalf("room record counts %d sent (%v), want 8", room.Backfilled, err)
	}
}

// TestTurnoverIsOfTheRoomsSeats: a room opened early (2 teams of 3, two
// players) may be sent turnover times its six seats, not its match's
// two players.
func TestTurnoverIsOfTheRoomsSeats(t *testing.T) {
	m := events.Match{MatchID: "r2", Mode: "3v3", Teams: 2, TeamSize: 3, Tickets: []events.MatchTicket{
		{TicketID: "ta", Players: []string{"a"}}, {TicketID: "tb", Players: []string{"b"}, Team: 1}}}
	rs := &rooms{turnover: 4}
	if n, err := rs.limit(m); err != nil || n != 24 {
		t.Fatalf("limit %d %v, want 24", n, err)
	}
}
