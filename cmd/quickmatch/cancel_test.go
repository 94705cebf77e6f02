package main

import (
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestCancelTellsACancelNobodyTold: a ticket cancelled before whose
// players were never told (an earlier cancel claimed it, then failed to
// publish) has them told by the next cancel, which still says it was
// cancelled before; one already told is not told again.
func TestCancelTellsACancelNobodyTold(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	lt := events.LiveTicket{TicketID: "t-pat", Players: []string{"pat"}, Region: "eu", Tier: "gold", Mode: "1v1"}
	if _, err := f.players.Take(t.Context(), lt, nil); err != nil {
		t.Fatal(err)
	}
	f.claim(t, "t-pat", events.OwnerCancelled) // and nobody told pat
	info, err := f.s.lookupTicket(t.Context(), "t-pat")
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.s.cancel(t.Context(), info, "abuse report 7", events.DefaultRegions)
	if err != nil || out.Cancelled || !strings.Contains(out.Reason, "cancelled before") {
		t.Fatalf("cancel: %+v %v, want cancelled before", out, err)
	}
	rs := f.results(t, "pat")
	if len(rs) != 1 || rs[0].Status != events.StatusCancelled || rs[0].TicketID != "t-pat" {
		t.Fatalf("pat was sent %+v, want one cancelled result", rs)
	}
	if told, err := f.claims.Told(t.Context(), "t-pat", events.OwnerCancelled); err != nil || !told {
		t.Fatalf("told mark: %v %v", told, err)
	}
	if _, err := f.s.cancel(t.Context(), info, "again", events.DefaultRegions); err != nil {
		t.Fatal(err)
	}
	if rs := f.results(t, "pat"); len(rs) != 1 {
		t.Fatalf("a third cancel told pat again: %+v", rs)
	}
}

// TestCancelDecidesFromItsOwnClaim: a ticket cancelled by its player
// after the CLI looked it up (and told) is reported cancelled before,
// not as the operator's cancel with the operator's reason.
func TestCancelDecidesFromItsOwnClaim(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	lt := events.LiveTicket{TicketID: "t-kim", Players: []string{"kim"}, Region: "eu", Tier: "gold", Mode: "1v1"}
	if _, err := f.players.Take(t.Context(), lt, nil); err != nil {
		t.Fatal(err)
	}
	info, err := f.s.lookupTicket(t.Context(), "t-kim") // undecided when read
	if err != nil {
		t.Fatal(err)
	}
	f.claim(t, "t-kim", events.OwnerCancelled) // the player's cancel, in between
	if err := f.claims.Tell(t.Context(), events.Telling{Ticket: lt, Owner: events.OwnerCancelled, Reason: "player left"}, nil); err != nil {
		t.Fatal(err)
	}
	out, err := f.s.cancel(t.Context(), info, "abuse report 8", events.DefaultRegions)
	if err != nil || out.Cancelled || !strings.Contains(out.Reason, "cancelled before") {
		t.Fatalf("cancel: %+v %v, want cancelled before", out, err)
	}
	if rs := f.results(t, "kim"); len(rs) != 1 || rs[0].Reason != "player left" {
		t.Fatalf("kim was sent %+v, want the player's cancel only", rs)
	}
}
