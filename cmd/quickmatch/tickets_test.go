package main

import (
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestPlayerIgnoresAnotherPlayersClaim: a ticket id refused because it
// is another player's (ErrTicketIDTaken) shows, for the refused player,
// what they were told, not the other ticket's claim.
func TestPlayerIgnoresAnotherPlayersClaim(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner := events.LiveTicket{TicketID: "t-x", Players: []string{"px1"}, Region: "eu", Tier: "gold", Mode: "1v1"}
	if _, err := f.players.Take(t.Context(), owner, nil); err != nil {
		t.Fatal(err)
	}
	f.claim(t, "t-x", events.MatchOwner("m1"))
	refused := events.Result{TicketID: "t-x", PlayerID: "py1", Status: events.StatusFailed, Reason: "ticket rejected: already the id of a ticket of other players"}
	if err := f.pub.Results(t.Context(), []events.Result{refused}); err != nil {
		t.Fatal(err)
	}
	info, err := f.s.lookupPlayer(t.Context(), "py1")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Tickets) != 1 || info.Tickets[0].Status != events.StatusFailed || info.Tickets[0].Claim != "" {
		t.Fatalf("py1's tickets: %+v, want t-x failed, without px1's claim", info.Tickets)
	}
}
