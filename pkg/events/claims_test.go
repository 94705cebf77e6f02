package events_test

import (
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
