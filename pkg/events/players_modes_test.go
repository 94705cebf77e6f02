package events_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestTakeLateOfALiveTicketOnlyReads: the matcher's late tickets are
// usually live already (their frontend took them first), so TakeLate
// reads each player's entry first and writes nothing, where writing
// first (TakeFirst's createFirst) cost a refused bind, a read of the
// binding and a refused write per player (review R7).
func TestTakeLateOfALiveTicketOnlyReads(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	t0 := time.Now()
	if _, err := e.players.TakeFirstFresh(ctx, live("a1", t0, "ann", "amy"), e.tell); err != nil {
		t.Fatal(err)
	}
	nc := e.js.Conn()
	see := testkit.Collect(t, nc, ">")
	from := len(testkit.Seen(t, nc, see))
	if got, err := e.players.TakeLate(ctx, live("a1", t0, "ann", "amy"), e.tell); err != nil || !got.Live {
		t.Fatalf("TakeLate of a live ticket: %+v, %v", got, err)
	}
	var writes, api int
	for _, m := range testkit.Seen(t, nc, see)[from:] {
		switch {
		case strings.HasPrefix(m.Subject, "$KV."):
			writes++
		case strings.HasPrefix(m.Subject, "$JS.API."):
			api++
		}
	}
	if writes != 0 {
		t.Errorf("TakeLate of a live ticket wrote %d times, want 0", writes)
	}
	if api != 2 {
		t.Errorf("TakeLate of a live two-player ticket made %d API requests, want 2 (a read per player)", api)
	}
}

// claimedFor makes lt its players' live ticket and claims it for owner,
// as a match, a cancel or an expiry would.
func (e *playersEnv) claimedFor(t *testing.T, lt events.LiveTicket, owner string) {
	t.Helper()
	if _, err := e.players.Take(t.Context(), lt, e.tell); err != nil {
		t.Fatal(err)
	}
	if won, _, err := e.claims.Claim(t.Context(), lt.TicketID, owner); err != nil || !won {
		t.Fatalf("claim %s for %s: %v %v", lt.TicketID, owner, won, err)
	}
}

// wantLive fails t unless player's live ticket is ticket ("": none).
func (e *playersEnv) wantLive(t *testing.T, player, ticket string) {
	t.Helper()
	if cur, err := e.players.Live(t.Context(), player); err != nil || cur != ticket {
		t.Fatalf("%s's live ticket %q (%v), want %q", player, cur, err, ticket)
	}
}

// decisions binds the matches' decisions, to decide a match by hand.
func (e *playersEnv) decisions(t *testing.T) *events.Decisions {
	t.Helper()
	d, err := events.NewDecisions(t.Context(), e.js, events.Subjects{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestTakeFirstOverAPublishedMatchThenRequeued: TakeFirst leaves a
// returning player's ticket of a published match unclaimed by
// "superseded" (its match's claim would refuse it). If the allocator then
// gives that claim back (a requeue), the old ticket, taken in again
// (Take, or TakeLate), finds the newer ticket live and is superseded
// then, its players told once (review R7).
func TestTakeFirstOverAPublishedMatchThenRequeued(t *testing.T) {
	t.Parallel()
	for _, late := range []bool{false, true} {
		t.Run(map[bool]string{false: "take", true: "late"}[late], func(t *testing.T) {
			t.Parallel()
			e := newPlayers(t)
			ctx := t.Context()
			t0 := time.Now()
			a1 := live("a1", t0, "ann")
			e.claimedFor(t, a1, events.MatchOwner("m1"))
			if _, _, err := e.decisions(t).Decide(ctx, "m1", events.DecisionPublished); err != nil {
				t.Fatal(err)
			}
			if got, err := e.players.TakeFirstFresh(ctx, live("a2", t0.Add(time.Second), "ann"), e.tell); err != nil || !got.Live {
				t.Fatalf("a2: %+v, %v", got, err)
			}
			if err := e.claims.Release(ctx, []string{"a1"}, events.MatchOwner("m1")); err != nil {
				t.Fatal(err)
			}
			take := e.players.Take
			if late {
				take = e.players.TakeLate
			}
			got, err := take(ctx, a1, e.tell)
			if err != nil || got.Live {
				t.Fatalf("a1 taken in again: %+v, %v; want not live", got, err)
			}
			if own, err := e.claims.Owner(ctx, "a1"); err != nil || own != events.OwnerSuperseded || !slices.Equal(e.told["a1"], []string{"a2"}) {
				t.Fatalf("a1 claimed %q (%v), told %v; want superseded by a2, told once", own, err, e.told["a1"])
			}
			e.wantLive(t, "ann", "a2")
		})
	}
}

// TestTakeFirstFreshReadsItsClaimOnceAnEntryNamesIt: a party's fresh
// ticket can be superseded through the first player's entry before the
// next player's is written (that player's newer ticket, taken meanwhile).
// From the second player on TakeFirstFresh reads the ticket's own claim,
// as TakeFirst does, and stops at "superseded" instead of writing a dead
// ticket into the next entry (review R7's L1).
func TestTakeFirstFreshReadsItsClaimOnceAnEntryNamesIt(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	t0 := time.Now()
	e.claimedFor(t, live("b1", t0, "bob"), events.OwnerCancelled)
	// p1 made live for ann, then superseded through ann's entry.
	if won, _, err := e.claims.Claim(ctx, "p1", events.OwnerSuperseded); err != nil || !won {
		t.Fatalf("supersede p1: %v %v", won, err)
	}
	got, err := e.players.TakeFirstFresh(ctx, live("p1", t0.Add(time.Second), "ann", "bob"), e.tell)
	if err != nil || got.Live || got.Owner != events.OwnerSuperseded {
		t.Fatalf("TakeFirstFresh of a superseded party ticket: %+v, %v; want not live, superseded", got, err)
	}
	e.wantLive(t, "bob", "b1")
}
