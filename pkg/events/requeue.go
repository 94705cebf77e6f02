package events

import (
	"cmp"
	"context"
	"fmt"
)

// RequeueMsgID is the message id of ticket ticketID requeued from match
// matchID: new for each match (the ticket's own id is still inside the
// duplicate window), the same for a retry of one requeue (stored once).
func RequeueMsgID(ticketID, matchID string) string { return ticketID + "-requeue-" + matchID }

// Requeue publishes mt, one ticket of m, on its shard's ticket subject
// again (its own tier's, when it crossed a tier bound), with its id,
// skill, creation time and attributes, so that it keeps its wait.
// The caller releases the ticket's claim for m and tells its players first.
func (p *Publisher) Requeue(ctx context.Context, m Match, mt MatchTicket) error {
	t := TicketFor(mt, m.Mode)
	msg, err := NewMsg(ctx, p.subj.Ticket(m.Region, cmp.Or(mt.Tier, m.Tier)), RequeueMsgID(mt.TicketID, m.MatchID), t)
	if err != nil {
		return err
	}
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("requeue ticket %s: %w", mt.TicketID, err)
	}
	return nil
}
