package matcher

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// TestBackfillPublishedFillIsNotPublishedAgain: match m-fill filled room
// r1's request r1-b1 with a's ticket and was published (before the
// duplicate window this test's streams start in: they never saw it).
// a has not joined yet, so the room still asks r1-b1 and the allocator
// publishes it again; the shard's owner holds it and tries to fill it
// with b's ticket. That fill meets the request's claim, held by m-fill,
// decided published: the request is filled, and m-fill is not published
// again (a would hear "matched" again, and the allocator would send a
// second "assigned" with a new token).
func TestBackfillPublishedFillIsNotPublishedAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	resA := testkit.Collect(t, e.nc, e.subj.Result("a"))
	acks := testkit.Collect(t, e.nc, "ack.>")
	created := time.Now().UTC().Add(-time.Second)
	r := e.backfillRunner(t)
	e.liveTicket(t, "a", "ta", created)
	req := roomRequest("r1-b1", created)
	m := events.Match{SchemaVersion: events.SchemaVersion, MatchID: "m-fill", Mode: "2v2", Region: "eu", Tier: "gold", CreatedAt: created,
		AcceptsBackfill: true, Backfill: &events.MatchBackfill{BackfillID: req.BackfillID, MatchID: "r1"},
		Tickets: []events.MatchTicket{{TicketID: "ta", Players: []string{"a"}, Team: 1, Skill: 1650, CreatedAt: created, Attributes: pc}}}
	data, _ := json.Marshal(m)
	if _, err := r.commits.matches.Put(t.Context(), m.MatchID, data); err != nil {
		t.Fatal(err)
	}
	if lost, err := e.claims(t).ClaimAll(t.Context(), m.ClaimKeys(), events.MatchOwner(m.MatchID)); err != nil || len(lost) > 0 {
		t.Fatal(lost, err)
	}
	if _, _, err := r.commits.decisions.Decide(t.Context(), m.MatchID, events.DecisionPublished); err != nil {
		t.Fatal(err)
	}
	e.waiting(t, r, "tb", "b", 7, created)
	hold(r, req, "r")
	fillAndSettle(t, r, req.BackfillID, time.Now())
	if _, ok := holding(r, req.BackfillID); ok {
		t.Fatal("the request filled by a published match is still held")
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return len(acked(acks())["r"]) > 0 }, "the request not answered")
	time.Sleep(300 * time.Millisecond) // room for a publish to show
	if got := acked(acks())["r"]; len(got) != 1 || got[0] != string(ackDone) {
		t.Fatalf("the request answered %v, want an ack", got)
	}
	if len(allocs()) > 0 || len(resA()) > 0 {
		t.Fatalf("m-fill published again: %d to the allocator, %d results to a", len(allocs()), len(resA()))
	}
	if _, waiting := r.pools["2v2"].Get("tb"); !waiting {
		t.Fatal("b's ticket is not waiting again")
	}
}

// TestBackfillRequestFateFollowsTheDecision: the request's claim held by
// the fill's own match fills it only once that match is decided
// published; undecided or undone, the request stays open and is tried
// again.
func TestBackfillRequestFateFollowsTheDecision(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.backfillRunner(t)
	c := r.commits
	fate := func(matchID, key string) backfillFate {
		return requestFate(t.Context(), c.claims, c.rec, matchID, key, 5*time.Second)
	}
	for _, tc := range []struct {
		match    string
		decision events.Decision
		want     backfillFate
	}{
		{"m-undecided", "", backfillOpen},
		{"m-undone", events.DecisionUndone, backfillOpen},
		{"m-published", events.DecisionPublished, backfillFilled},
	} {
		key := events.BackfillClaimKey("r1-" + tc.match)
		if lost, err := c.claims.ClaimAll(t.Context(), []string{key}, events.MatchOwner(tc.match)); err != nil || len(lost) > 0 {
			t.Fatal(lost, err)
		}
		if tc.decision != "" {
			if _, _, err := c.decisions.Decide(t.Context(), tc.match, tc.decision); err != nil {
				t.Fatal(err)
			}
		}
		if got := fate(tc.match, key); got != tc.want {
			t.Errorf("claim held by its own match %s (decided %q): fate %v, want %v", tc.match, tc.decision, got, tc.want)
		}
	}
	if got := fate("m-other", events.BackfillClaimKey("r1-m-published")); got != backfillFilled {
		t.Errorf("claim held by another match decided published: fate %v, want filled", got)
	}
	if got := fate("m-other", events.BackfillClaimKey("r1-nobody")); got != backfillOpen {
		t.Errorf("claim held by no one: fate %v, want open", got)
	}
}

// TestBackfillAnchorIsATicketOfTheMode: the room stands in the pool as a
// ticket of the mode with the room's attributes would (SetAttributes:
// compiled values and class, so the pool's index passes over the classes
// the rules keep apart), with the room's players.
func TestBackfillAnchorIsATicketOfTheMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.backfillRunner(t)
	p := r.pools["2v2"]
	req := roomRequest("r1-b1", time.Now().UTC())
	req.Players = []string{"alice", "dave"}
	h := &heldBackfill{req: req}
	got, err := h.anchor(p)
	if err != nil {
		t.Fatal(err)
	}
	want := &pool.Entry{TicketID: events.BackfillClaimKey("r1-b1"), Skill: req.Skill, Created: req.CreatedAt.UnixNano(), Players: req.Players}
	if err := want.SetAttributes(p.Mode(), req.Attributes); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("anchor %+v, want %+v", got, want)
	}
}

// TestBackfillHoldsARoomsLatestAsk: a shard holds one request per room,
// the highest Ask: an older one arriving late is acked at once, a newer
// one takes the place of the one held (acked), and the newer is the one
// filled.
func TestBackfillHoldsARoomsLatestAsk(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	e.startWorker(t, Config{RulesFile: backfillRulesFile(t)})
	pub := events.NewPublisher(e.js, e.subj)
	ask := func(n int) {
		t.Helper()
		req := roomRequest("r1-b"+string(rune('0'+n)), time.Now().UTC())
		req.Ask = n
		if err := pub.Backfill(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	stored := func() uint64 { return testkit.StreamMsgs(t, e.js, e.subj.BackfillsStream()) }
	ask(2)
	ask(1)
	testkit.Eventually(t, 10*time.Second, func() bool { return stored() == 1 }, "%d of room r1's requests held, want the latest only", stored())
	ask(3)
	testkit.Eventually(t, 10*time.Second, func() bool { return stored() == 1 }, "%d of room r1's requests held, want the latest only", stored())
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"tp","player_id":"p","mode":"2v2","skill":1650,"attributes":{"strings":{"platform":"pc"}}}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 1 && stored() == 0 }, "the latest request not filled")
	if m := matches(t, allocs())[0]; m.Backfill == nil || m.Backfill.BackfillID != "r1-b3" {
		t.Fatalf("filled %+v, want the request of Ask 3", m.Backfill)
	}
}
