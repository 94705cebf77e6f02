package events_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

func newClaims(t *testing.T) *events.Claims {
	t.Helper()
	js := provisioned(t, events.Topology{})
	c, err := events.NewClaims(t.Context(), js, events.Subjects{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClaimIsFirstWriterWins(t *testing.T) {
	t.Parallel()
	c := newClaims(t)
	ctx := t.Context()
	won, cur, err := c.Claim(ctx, "t1", events.MatchOwner("m1"))
	if err != nil || !won || cur != "match:m1" {
		t.Fatalf("first claim: %v %q %v", won, cur, err)
	}
	if won, _, _ := c.Claim(ctx, "t1", events.MatchOwner("m1")); !won {
		t.Fatal("claiming again for the same owner must be idempotent")
	}
	won, cur, err = c.Claim(ctx, "t1", events.OwnerCancelled)
	if err != nil || won || cur != "match:m1" {
		t.Fatalf("cancel after match: %v %q %v", won, cur, err)
	}
	if id, ok := events.OwnerMatchID(cur); !ok || id != "m1" {
		t.Fatalf("OwnerMatchID(%q) = %q %v", cur, id, ok)
	}
}

func TestClaimAllIsAllOrNothing(t *testing.T) {
	t.Parallel()
	c := newClaims(t)
	ctx := t.Context()
	if won, _, _ := c.Claim(ctx, "b", events.OwnerCancelled); !won {
		t.Fatal("cancel b")
	}
	lost, err := c.ClaimAll(ctx, []string{"a", "b", "c"}, events.MatchOwner("m1"))
	if err != nil || len(lost) != 1 || lost["b"] != events.OwnerCancelled {
		t.Fatalf("lost = %v, %v", lost, err)
	}
	for _, id := range []string{"a", "c"} {
		if owner, _ := c.Owner(ctx, id); owner != "" {
			t.Fatalf("claim on %s kept after a failed ClaimAll: %q", id, owner)
		}
	}
	// The released tickets can be matched again.
	if lost, err := c.ClaimAll(ctx, []string{"a", "c"}, events.MatchOwner("m2")); err != nil || len(lost) != 0 {
		t.Fatalf("reclaim: %v %v", lost, err)
	}
}

// TestClaimRace has many owners race for the same tickets: each ticket gets
// exactly one owner.
func TestClaimRace(t *testing.T) {
	t.Parallel()
	c := newClaims(t)
	ctx := t.Context()
	const tickets, racers = 20, 8
	var mu sync.Mutex
	winners := map[string][]string{}
	var wg sync.WaitGroup
	for r := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range tickets {
				id := fmt.Sprintf("t%d", i)
				owner := fmt.Sprintf("match:r%d", r)
				if won, _, err := c.Claim(ctx, id, owner); err == nil && won {
					mu.Lock()
					winners[id] = append(winners[id], owner)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for i := range tickets {
		id := fmt.Sprintf("t%d", i)
		if len(winners[id]) != 1 {
			t.Errorf("ticket %s won by %v", id, winners[id])
		}
	}
}

// A match's claims carry the match (HeaderMatch) and its seal
// (HeaderMatchSeal), whether made at once or over a claim given back
// before (a delete marker, where the batch's create is refused and the
// claim is made again on its own); a claim made without it carries none,
// and its value is its owner either way.
func TestAMatchsClaimsCarryTheMatch(t *testing.T) {
	t.Parallel()
	c := newClaims(t)
	ctx := t.Context()
	if !c.CarriesMatch() {
		t.Fatal("a bound claims bucket must carry the match")
	}
	seals, err := events.NewSeals(bytes.Repeat([]byte("k"), events.MinSealKey))
	if err != nil {
		t.Fatal(err)
	}
	first := []byte(`{"match_id":"m1","tickets":[{"ticket_id":"t1"},{"ticket_id":"t2"}]}`)
	got := c.ClaimBatch(ctx, []events.ClaimGroup{{IDs: []string{"t1", "t2"}, Owner: events.MatchOwner("m1"), Match: first,
		MatchSeal: seals.SealMatch(events.MatchOwner("m1"), first)}})
	if got[0].Err != nil || len(got[0].Lost) > 0 {
		t.Fatalf("ClaimBatch = %+v", got)
	}
	for _, id := range []string{"t1", "t2"} {
		r, err := c.Read(ctx, id)
		if err != nil || r.Owner != "match:m1" || string(r.Match) != string(first) || r.Created.IsZero() || !r.SealedBy(seals) {
			t.Fatalf("Read(%s) = %+v, %v; want match:m1 carrying %s, sealed", id, r, err, first)
		}
	}
	if err := c.Release(ctx, []string{"t1", "t2"}, events.MatchOwner("m1")); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Read(ctx, "t1"); err != nil || r.Owner != "" || r.Match != nil {
		t.Fatalf("Read of a claim given back = %+v, %v", r, err)
	}
	again := []byte(`{"match_id":"m2","tickets":[{"ticket_id":"t1"}]}`)
	got = c.ClaimBatch(ctx, []events.ClaimGroup{{IDs: []string{"t1"}, Owner: events.MatchOwner("m2"), Match: again,
		MatchSeal: seals.SealMatch(events.MatchOwner("m2"), again)}})
	if got[0].Err != nil || len(got[0].Lost) > 0 {
		t.Fatalf("ClaimBatch over a claim given back = %+v", got)
	}
	if r, err := c.Read(ctx, "t1"); err != nil || r.Owner != "match:m2" || string(r.Match) != string(again) || !r.SealedBy(seals) {
		t.Fatalf("Read of a claim made over its delete marker = %+v, %v; want match:m2 carrying %s, sealed", r, err, again)
	}
	// Over a claim given back, a create loses to the claim made since.
	lost := c.ClaimBatch(ctx, []events.ClaimGroup{{IDs: []string{"t1"}, Owner: events.MatchOwner("m3"), Match: []byte(`{}`)}})
	if lost[0].Err != nil || lost[0].Lost["t1"] != "match:m2" {
		t.Fatalf("ClaimBatch of a claimed ticket = %+v; want lost to match:m2", lost)
	}
	if won, _, err := c.Claim(ctx, "t3", events.OwnerCancelled); err != nil || !won {
		t.Fatalf("Claim = %v, %v", won, err)
	}
	if r, err := c.Read(ctx, "t3"); err != nil || r.Owner != events.OwnerCancelled || r.Match != nil {
		t.Fatalf("Read of a cancel's claim = %+v, %v; want no match", r, err)
	}
}
