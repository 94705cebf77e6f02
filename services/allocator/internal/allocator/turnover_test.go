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
	rs := &rooms{turnover: 4, refill: time.Hour}
	if b, err := rs.budget(m); err != nil || b != (budget{most: 24, per: 10 * time.Minute}) {
		t.Fatalf("budget %+v %v, want 24 at once, one back each 10 minutes", b, err)
	}
}

// TestARoomIsGivenBackItsSeatsEachRefill: a room that was sent all it
// may be is given back a player at a time, its seats each refill, what is
// not yet a whole player kept for the next time; so a room that runs for
// hours with players dropping in is served for as long as it loses no
// more than its seats an hour. Before, the bound was on the room's life:
// a 5v5 losing a player every four minutes was refused after 2.5 h.
func TestARoomIsGivenBackItsSeatsEachRefill(t *testing.T) {
	t.Parallel()
	b := budget{most: 8, per: 15 * time.Minute} // a 2v2, turnover 2, refill 1 h
	t0 := time.Date(2026, 12, 5, 20, 0, 0, 0, time.UTC)
	r := record{Backfilled: 8, BackfilledAt: t0.UnixMilli()}
	for _, step := range []struct {
		at   time.Duration
		want int
	}{{14 * time.Minute, 8}, {15 * time.Minute, 7}, {50 * time.Minute, 5}, {61 * time.Minute, 4}, {10 * time.Hour, 0}} {
		r.refill(t0.Add(step.at), b)
		if r.Backfilled != step.want {
			t.Fatalf("after %s: %d counted, want %d", step.at, r.Backfilled, step.want)
		}
	}
	if seats, err := (&record{Backfilled: 7}).spare("r1", []int{2, 2}, b); err != nil || !slices.Equal(seats, []int{1, 0}) {
		t.Fatalf("spare %v %v, want the one seat given back", seats, err)
	}
	never := record{Backfilled: 8, BackfilledAt: t0.UnixMilli()}
	never.refill(t0.Add(100*time.Hour), budget{most: 8})
	if never.Backfilled != 8 {
		t.Fatalf("no refill: %d counted after 100 h, want 8", never.Backfilled)
	}
}

// TestASpentRoomIsFilledAgainOnceGivenBack: the hostile test's room,
// spent, is sent a player again once a quarter of an hour gave one back
// (2v2, refill 1 h), its request and its fill.
func TestASpentRoomIsFilledAgainOnceGivenBack(t *testing.T) {
	t.Parallel()
	e := spentRoom(t)
	e.wait(10*time.Minute + promiseMargin) // the promise ends: spent, nothing given back yet
	e.src.set(play.Backfill{MatchID: "r1", Ask: 2, Seats: []int{2, 2}})
	e.rq.poll(t.Context())
	if err := e.fill(fillSeats("f1", []int{1, 0})); !errors.Is(err, errRoomSpent) {
		t.Fatalf("a fill of the spent room: %v, want it refused", err)
	}
	e.wait(5 * time.Minute) // 15 minutes since the promise: one player back
	e.src.set(play.Backfill{MatchID: "r1", Ask: 3, Seats: []int{2, 2}})
	e.rq.poll(t.Context())
	if req := e.request(t, 2); !slices.Equal(req.Seats, []int{1, 0}) { // Ask 2 was not published
		t.Fatalf("request once given back: %v, want one seat", req.Seats)
	}
	if err := e.fill(fillSeats("f2", []int{1, 0})); err != nil {
		t.Fatalf("a fill once given back: %v", err)
	}
}

// TestARoomFullBeforeRefillsStartsItsClock: a room whose record counts
// players but no refill clock (written before refills, or by an
// allocator of the earlier version during a rollout) and is full gets no
// promise to start the clock: its request starts it, and a quarter of an
// hour later it is sent a player again. Before, it stayed full for good.
func TestARoomFullBeforeRefillsStartsItsClock(t *testing.T) {
	t.Parallel()
	e := spentRoom(t)
	r, _, err := e.recs.room(t.Context(), "r1")
	if err != nil {
		t.Fatal(err)
	}
	r.BackfilledAt = 0 // as an earlier version writes it
	data, _ := r.encode()
	if _, err := e.recs.kv.Put(t.Context(), "r1", data); err != nil {
		t.Fatal(err)
	}
	e.wait(5 * time.Hour) // the promise long over; nothing given back without a clock
	e.src.set(play.Backfill{MatchID: "r1", Ask: 2, Seats: []int{2, 2}})
	e.rq.poll(t.Context())
	e.wait(15 * time.Minute)
	e.src.set(play.Backfill{MatchID: "r1", Ask: 3, Seats: []int{2, 2}})
	e.rq.poll(t.Context())
	if req := e.request(t, 2); !slices.Equal(req.Seats, []int{1, 0}) {
		t.Fatalf("request a quarter of an hour after the clock started: %v, want one seat", req.Seats)
	}
}

// TestAClockBehindGivesNothingBack: an allocator whose clock is behind
// the one that wrote the refill clock gives nothing back and leaves the
// clock as it is (reset, an allocator ahead gave the difference back
// again: 20 players promised where 10 were left).
func TestAClockBehindGivesNothingBack(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 5, 20, 0, 0, 0, time.UTC)
	b := budget{most: 10, per: 6 * time.Minute}
	r := record{Backfilled: 10, BackfilledAt: t0.UnixMilli()}
	r.refill(t0.Add(-30*time.Minute), b)
	if r.Backfilled != 10 || r.BackfilledAt != t0.UnixMilli() {
		t.Fatalf("behind: %+v", r)
	}
	r.refill(t0.Add(6*time.Minute), b)
	if r.Backfilled != 9 {
		t.Fatalf("ahead by one period: %d counted, want 9", r.Backfilled)
	}
	// A clock written further ahead than the whole budget takes to come
	// back (an hour here) was wrong: taken as now, or the room stayed
	// spent for as long as the clock was ahead.
	wrong := record{Backfilled: 10, BackfilledAt: t0.Add(3 * time.Hour).UnixMilli()}
	wrong.refill(t0, b)
	wrong.refill(t0.Add(6*time.Minute), b)
	if wrong.Backfilled != 9 {
		t.Fatalf("a clock 3 h ahead: %d counted 6 minutes on, want 9", wrong.Backfilled)
	}
}

// spentRoom is room r1 (a 2v2) with a turnover of 1 and a refill of an
// hour, sent its four players by its first request's fill: spent.
func spentRoom(t *testing.T) *seatedEnv {
	t.Helper()
	e := newSeatedEnv(t)
	e.rq.rooms.turnover, e.rq.rooms.refill = 1, time.Hour
	e.src.set(play.Backfill{MatchID: "r1", Ask: 1, Seats: []int{2, 2}})
	e.rq.poll(t.Context())
	if err := e.fill(fillSeats("f0", e.request(t, 1).Seats)); err != nil {
		t.Fatal(err)
	}
	return e
}
