package events_test

import (
	"maps"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestClaimBatchSettlesEachGroupAsClaimAll: three groups claimed in one
// batch. The first wins all its tickets; the second meets a ticket
// cancelled before and gives back what it claimed; the third holds a
// ticket given back before (its key deleted, which a batched create
// counts as existing), claimed again through Claim.
func TestClaimBatchSettlesEachGroupAsClaimAll(t *testing.T) {
	t.Parallel()
	c := newClaims(t)
	ctx := t.Context()
	if won, _, err := c.Claim(ctx, "b2", events.OwnerCancelled); err != nil || !won {
		t.Fatal(won, err)
	}
	if won, _, err := c.Claim(ctx, "c1", events.MatchOwner("old")); err != nil || !won {
		t.Fatal(won, err)
	}
	if err := c.Release(ctx, []string{"c1"}, events.MatchOwner("old")); err != nil {
		t.Fatal(err)
	}
	out := c.ClaimBatch(ctx, []events.ClaimGroup{
		{IDs: []string{"a1", "a2"}, Owner: events.MatchOwner("ma")},
		{IDs: []string{"b1", "b2"}, Owner: events.MatchOwner("mb")},
		{IDs: []string{"c1", "c2"}, Owner: events.MatchOwner("mc")},
	})
	if out[0].Err != nil || len(out[0].Lost) != 0 || out[2].Err != nil || len(out[2].Lost) != 0 {
		t.Fatalf("groups a and c: %+v, %+v; want every claim won", out[0], out[2])
	}
	if out[1].Err != nil || len(out[1].Lost) != 1 || out[1].Lost["b2"] != events.OwnerCancelled {
		t.Fatalf("group b: %+v; want b2 lost to cancelled", out[1])
	}
	want := map[string]string{"a1": "match:ma", "a2": "match:ma", "b1": "", "b2": events.OwnerCancelled, "c1": "match:mc", "c2": "match:mc"}
	for id, owner := range want {
		if got, err := c.Owner(ctx, id); err != nil || got != owner {
			t.Errorf("claim of %s held by %q (%v), want %q", id, got, err, owner)
		}
	}
}

// TestDecideBatchFollowsADecisionMade: of two matches decided in one
// batch, the one decided before keeps its decision.
func TestDecideBatchFollowsADecisionMade(t *testing.T) {
	t.Parallel()
	js := provisioned(t, events.Topology{})
	d, err := events.NewDecisions(t.Context(), js, events.Subjects{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, _, err := d.Decide(ctx, "m2", events.DecisionUndone); err != nil {
		t.Fatal(err)
	}
	out := d.DecideBatch(ctx, []string{"m1", "m2"}, []events.Decision{events.DecisionPublished, events.DecisionPublished})
	if out[0] != (events.Decided{Decision: events.DecisionPublished, First: true}) {
		t.Errorf("m1: %+v, want published, first", out[0])
	}
	if out[1] != (events.Decided{Decision: events.DecisionUndone}) {
		t.Errorf("m2: %+v, want undone as decided before, not first", out[1])
	}
	for i, err := range d.MarkSentBatch(ctx, []string{"m1"}) {
		if err != nil {
			t.Fatal(i, err)
		}
	}
	if sent, err := d.Sent(ctx, "m1"); err != nil || !sent {
		t.Fatalf("m1 sent %v (%v), want marked", sent, err)
	}
}

// TestStaleBatchReadsAsStale: the live tickets of a batch's players, read
// together, make each group's stale tickets what Stale makes them: a
// ticket its player replaced is stale, naming the newer one; a live one,
// and one whose player has no live ticket recorded, are not.
func TestStaleBatchReadsAsStale(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	t0 := time.Now()
	for _, lt := range []events.LiveTicket{live("ta", t0, "a"), live("tb", t0, "b"), live("tc", t0, "c"), live("tc2", t0.Add(time.Second), "c")} {
		if _, err := e.players.Take(ctx, lt, e.tell); err != nil {
			t.Fatal(err)
		}
	}
	groups := []map[string][]string{
		{"ta": {"a"}, "tb": {"b"}},
		{"tc": {"c"}, "tn": {"nobody"}},
	}
	stale, errs := e.players.StaleBatch(ctx, groups)
	for i, g := range groups {
		want, err := e.players.Stale(ctx, g)
		if err != nil || errs[i] != nil {
			t.Fatalf("group %d: %v, %v", i, err, errs[i])
		}
		if !maps.Equal(stale[i], want) {
			t.Errorf("group %d: stale %v, want %v (as Stale)", i, stale[i], want)
		}
	}
	if stale[1]["tc"] != "tc2" || len(stale[0]) != 0 {
		t.Errorf("stale %v, want only tc, replaced by tc2", stale)
	}
}
