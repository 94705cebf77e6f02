package allocator_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// Hostile game servers: what a game server shows is its own word, and a
// server may show anything (any match id, any seats, a new Ask on every
// poll). These tests run a server that lies beside the room's own.

// fillFor is match id filling request backfillID of room r1 with
// players on team.
func fillFor(id, backfillID string, team int, players ...string) events.Match {
	m := teamMatch(id, "2v2", false, players)
	for i := range m.Tickets {
		m.Tickets[i].Team = team
		m.Tickets[i].Skill = 1640
		m.Tickets[i].CreatedAt = time.Now().UTC()
	}
	m.Backfill = &events.MatchBackfill{BackfillID: backfillID, MatchID: "r1"}
	return m
}

// stored waits for the polls to settle and returns the ids of the
// requests published.
func stored(t *testing.T, e *backfillEnv, published func() []*nats.Msg) []string {
	t.Helper()
	time.Sleep(200 * time.Millisecond) // several polls
	var ids []string
	for _, msg := range published() {
		b, err := events.DecodeBackfill(msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.BackfillID)
	}
	return ids
}

// TestBackfillIsAskedOnlyByTheRoomsServer: room r1 runs on gs-1 (its
// allocation record says so). gs-2 shows a request for r1 under another
// Ask, and one for r9, which has a match but no allocation record: none
// is published. gs-1's own request is, though gs-2 shows the same id
// too. And a fill is given the seats gs-1 asks for, not those gs-2
// shows: two players for r1's one free seat are requeued.
func TestBackfillIsAskedOnlyByTheRoomsServer(t *testing.T) {
	t.Parallel()
	e := startBackfill(t, "gs-2")
	hostile := e.others[0]
	e.room(t)
	r9 := teamMatch("r9", "2v2", false, []string{"x1", "x2"}, []string{"y1", "y2"})
	data, _ := json.Marshal(r9)
	kv, err := e.js.KeyValue(t.Context(), e.subj.MatchesBucket())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "r9", data); err != nil {
		t.Fatal(err)
	}
	requests := testkit.Collect(t, e.nc, e.subj.AllBackfills())
	hostile.ask(play.Backfill{MatchID: "r1", Ask: 7, Seats: []int{2, 2}}, play.Backfill{MatchID: "r9", Ask: 1, Seats: []int{0, 1}})
	if ids := stored(t, e, requests); len(ids) != 0 {
		t.Fatalf("published for another server's room, or a room with no record: %v", ids)
	}
	hostile.ask(play.Backfill{MatchID: "r1", Ask: 1, Seats: []int{0, 2}})
	e.gs.ask(play.Backfill{MatchID: "r1", Ask: 1, Seats: []int{0, 1}})
	testkit.Eventually(t, 10*time.Second, func() bool { return len(requests()) == 1 }, "the room's own request not published")
	req, err := events.DecodeBackfill(requests()[0].Data)
	if err != nil || req.BackfillID != "r1-b1" || req.Seats[0] != 0 || req.Seats[1] != 1 {
		t.Fatalf("published %+v %v, want gs-1's request", req, err)
	}

	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	if err := e.pub.Match(t.Context(), fillFor("f2", "r1-b1", 1, "frank", "gina")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == 2 }, "frank and gina not told")
	for _, msg := range res() {
		if r, _ := events.DecodeResult(msg.Data); r.Status != events.StatusQueued {
			t.Fatalf("two players for gs-1's one seat: %s told %s", r.PlayerID, r.Status)
		}
	}
	if err := e.pub.Match(t.Context(), fillFor("f3", "r1-b1", 1, "erin")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == 3 }, "erin not told")
	if r, _ := events.DecodeResult(res()[2].Data); r.Status != events.StatusAssigned || r.Assignment.Server != "gs-1" {
		t.Fatalf("erin told %+v", r)
	}
}

// TestBackfillAsksWithinTheRoomsShape: a 2v2 room asks for three seats
// on a team of two, then for seats on a third team: neither request is
// published; its request for the two seats of team 1 is.
func TestBackfillAsksWithinTheRoomsShape(t *testing.T) {
	t.Parallel()
	e := startBackfill(t)
	e.room(t)
	requests := testkit.Collect(t, e.nc, e.subj.AllBackfills())
	e.gs.ask(play.Backfill{MatchID: "r1", Ask: 1, Seats: []int{0, 3}})
	if ids := stored(t, e, requests); len(ids) != 0 {
		t.Fatalf("published three seats on a team of two: %v", ids)
	}
	e.gs.ask(play.Backfill{MatchID: "r1", Ask: 2, Seats: []int{0, 1, 1}})
	if ids := stored(t, e, requests); len(ids) != 0 {
		t.Fatalf("published a seat on a third team of a 2v2 room: %v", ids)
	}
	e.gs.ask(play.Backfill{MatchID: "r1", Ask: 3, Seats: []int{0, 2}})
	testkit.Eventually(t, 10*time.Second, func() bool { return len(requests()) == 1 }, "the room's request within its shape not published")
	if ids := stored(t, e, requests); len(ids) != 1 || ids[0] != "r1-b3" {
		t.Fatalf("published %v, want r1-b3", ids)
	}
}

// TestBackfillOfARoomOpenedEarly: a match of a mode of three teams of
// two started early (events.Match.Teams, TeamSize) with alice alone on
// team 0 and carol and dave on team 1: its room has a third team, all
// free. It may ask for that team's two seats, not for three, nor for a
// fourth team; the players sent there get tokens for a room of three
// teams of two (not of team 0's one player).
func TestBackfillOfARoomOpenedEarly(t *testing.T) {
	t.Parallel()
	e := startBackfill(t)
	m := teamMatch("r1", "3x2", false, []string{"alice"}, []string{"carol", "dave"})
	m.Teams, m.TeamSize = 3, 2
	e.open(t, m)
	requests := testkit.Collect(t, e.nc, e.subj.AllBackfills())
	e.gs.ask(play.Backfill{MatchID: "r1", Ask: 1, Seats: []int{0, 0, 3}})
	if ids := stored(t, e, requests); len(ids) != 0 {
		t.Fatalf("published three seats on a team of two: %v", ids)
	}
	e.gs.ask(play.Backfill{MatchID: "r1", Ask: 2, Seats: []int{0, 0, 2, 1}})
	if ids := stored(t, e, requests); len(ids) != 0 {
		t.Fatalf("published a seat on a fourth team: %v", ids)
	}
	e.gs.ask(play.Backfill{MatchID: "r1", Ask: 3, Seats: []int{0, 0, 2}})
	testkit.Eventually(t, 10*time.Second, func() bool { return len(requests()) == 1 }, "the free team's request not published")

	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	f := fillFor("f1", "r1-b3", 2, "erin", "frank")
	f.Mode = "3x2"
	if err := e.pub.Match(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == 2 }, "erin and frank not told")
	for _, msg := range res() {
		r, _ := events.DecodeResult(msg.Data)
		if r.Status != events.StatusAssigned {
			t.Fatalf("%s told %+v", r.PlayerID, r)
		}
		g, err := joinKeys.Verify(r.Assignment.JoinToken, time.Now())
		want := jointoken.Seat{Team: 2, Teams: 3, TeamSize: 2, AcceptsBackfill: true}
		if err != nil || g.Seat.Team != want.Team || g.Seat.Teams != want.Teams || g.Seat.TeamSize != want.TeamSize || !g.Seat.AcceptsBackfill {
			t.Fatalf("%s's seat %+v (%v), want %+v", r.PlayerID, g.Seat, err, want)
		}
	}
}
