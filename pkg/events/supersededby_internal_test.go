package events

import "testing"

// The frontend learns that a replacement it could neither take nor
// withdraw was taken by its matcher from the result told for the ticket
// it replaced (services/frontend tickets.queueThenTake): the reason its
// tellers word must read back as the newer ticket, and nothing else must.
func TestSupersededByReadsBackTheTellersReason(t *testing.T) {
	t.Parallel()
	old := LiveTicket{TicketID: "w1", Players: []string{"p1", "p2"}}
	for _, r := range (Telling{Ticket: old, Owner: OwnerSuperseded, Newer: "r1"}).results() {
		if got := SupersededBy(r); got != "r1" {
			t.Errorf("SupersededBy(%+v) = %q, want r1", r, got)
		}
	}
	named := (Telling{Ticket: old, Owner: OwnerSuperseded, Newer: "r1"}).results()[0]
	expired := named
	expired.Status = StatusExpired
	wild := named
	wild.Reason = supersededByTicket + "r1.>"
	tests := map[string]Result{
		"newer unknown to its teller": (Telling{Ticket: old, Owner: OwnerSuperseded}).results()[0],
		"cancelled by its client":     ClaimedResult("w1", "p1", OwnerCancelled),
		"not cancelled":               expired,
		"no ticket id":                wild,
	}
	for name, r := range tests {
		if got := SupersededBy(r); got != "" {
			t.Errorf("%s: SupersededBy(%+v) = %q, want none", name, r, got)
		}
	}
}
