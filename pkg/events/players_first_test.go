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
