package events_test

import (
	"errors"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TakeFirst makes a ticket live where that ends nothing waiting (no live
// ticket, or a decided one), and stops at a player's undecided ticket
// without ending it: the caller queues the new ticket first then.
func TestTakeFirstEndsNoWaitingTicket(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	t0 := time.Now()
	if got, err := e.players.TakeFirst(ctx, live("a1", t0, "ann"), e.tell); err != nil || !got.Live {
		t.Fatalf("a first ticket: %+v, %v", got, err)
	}
	_, err := e.players.TakeFirst(ctx, live("a2", t0.Add(time.Second), "ann"), e.tell)
	if !errors.Is(err, events.ErrWouldSupersede) {
		t.Fatalf("over the waiting a1: %v, want ErrWouldSupersede", err)
	}
	if own, err := e.claims.Owner(ctx, "a1"); err != nil || own != "" || len(e.told["a1"]) != 0 {
		t.Fatalf("a1 claimed %q (%v), told %v: TakeFirst ended a waiting ticket", own, err, e.told["a1"])
	}
	if cur, err := e.players.Live(ctx, "ann"); err != nil || cur != "a1" {
		t.Fatalf("ann's live ticket %q (%v), want a1", cur, err)
	}
	// Once a1 is decided, the next ticket is taken first.
	if won, _, err := e.claims.Claim(ctx, "a1", events.OwnerCancelled); err != nil || !won {
		t.Fatalf("cancel a1: %v %v", won, err)
	}
	if got, err := e.players.TakeFirst(ctx, live("a3", t0.Add(2*time.Second), "ann"), e.tell); err != nil || !got.Live {
		t.Fatalf("after a decided a1: %+v, %v", got, err)
	}
	// Take still supersedes a waiting ticket.
	if got, err := e.players.Take(ctx, live("a4", t0.Add(3*time.Second), "ann"), e.tell); err != nil || !got.Live || len(got.Superseded) != 1 {
		t.Fatalf("Take over the waiting a3: %+v, %v", got, err)
	}
}

// A ticket claimed by a match that is not decided published is not ended
// yet: the match's check, finding a newer ticket live, would undo it and
// supersede the ticket by one whose creation may still fail (review R1).
// TakeFirst stops there, as at a waiting ticket; once the match is
// published, the player's next ticket is taken first.
func TestTakeFirstEndsNoTicketOfAMatchNotPublished(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	decisions, err := events.NewDecisions(ctx, e.js, events.Subjects{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := e.players.TakeFirst(ctx, live("a1", t0, "ann"), e.tell); err != nil {
		t.Fatal(err)
	}
	if won, _, err := e.claims.Claim(ctx, "a1", events.MatchOwner("m1")); err != nil || !won {
		t.Fatalf("claim a1 for m1: %v %v", won, err)
	}
	check := func(step string, want error) {
		t.Helper()
		_, err := e.players.TakeFirst(ctx, live("a2", t0.Add(time.Second), "ann"), e.tell)
		if !errors.Is(err, want) && (want != nil || err != nil) {
			t.Fatalf("%s: TakeFirst over a1: %v, want %v", step, err, want)
		}
		cur, err := e.players.Live(ctx, "ann")
		if err != nil {
			t.Fatal(err)
		}
		if wantLive := map[bool]string{true: "a2", false: "a1"}[want == nil]; cur != wantLive {
			t.Fatalf("%s: ann's live ticket %q, want %s", step, cur, wantLive)
		}
	}
	check("m1 undecided", events.ErrWouldSupersede)
	if _, _, err := decisions.Decide(ctx, "m1", events.DecisionPublished); err != nil {
		t.Fatal(err)
	}
	check("m1 published", nil)

	// A match decided undone (another of its tickets was stale) gives its
	// fresh tickets back to wait: not ended (review R2: the test above
	// passed on a TakeFirst that counted any decision as ended).
	if _, err := e.players.TakeFirst(ctx, live("b1", t0, "bob"), e.tell); err != nil {
		t.Fatal(err)
	}
	if won, _, err := e.claims.Claim(ctx, "b1", events.MatchOwner("m2")); err != nil || !won {
		t.Fatalf("claim b1 for m2: %v %v", won, err)
	}
	if _, _, err := decisions.Decide(ctx, "m2", events.DecisionUndone); err != nil {
		t.Fatal(err)
	}
	if _, err := e.players.TakeFirst(ctx, live("b2", t0.Add(time.Second), "bob"), e.tell); !errors.Is(err, events.ErrWouldSupersede) {
		t.Fatalf("TakeFirst over b1 of an undone match: %v, want ErrWouldSupersede", err)
	}
	if cur, err := e.players.Live(ctx, "bob"); err != nil || cur != "b1" {
		t.Fatalf("bob's live ticket %q (%v), want b1", cur, err)
	}
}

// A decision that cannot be read (the matches bucket away) does not fail
// a returning player's TakeFirst but sends the creation the long way
// (ErrWouldSupersede), which needs no decision (review R2).
func TestTakeFirstWithoutDecisionsQueuesFirst(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	t0 := time.Now()
	if _, err := e.players.TakeFirst(ctx, live("a1", t0, "ann"), e.tell); err != nil {
		t.Fatal(err)
	}
	if won, _, err := e.claims.Claim(ctx, "a1", events.MatchOwner("m1")); err != nil || !won {
		t.Fatalf("claim a1 for m1: %v %v", won, err)
	}
	if err := e.js.DeleteKeyValue(ctx, events.Subjects{}.MatchesBucket()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.players.TakeFirst(ctx, live("a2", t0.Add(time.Second), "ann"), e.tell); !errors.Is(err, events.ErrWouldSupersede) {
		t.Fatalf("TakeFirst with the matches bucket away: %v, want ErrWouldSupersede", err)
	}
}
