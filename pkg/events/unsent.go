package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// UnsentPast reports whether match matchID, which holds the claim of
// ticketID, is decided or being decided and unsent past UnsentGrace at
// now: it was stored more than UnsentGrace before now (its record last
// written, or, with none, the claim of ticketID, which carries it:
// HeaderMatch) and it has no sent mark. A match with neither is not:
// there is nothing to send (a matcher that meets its claim counts it
// decided).
func (d *Decisions) UnsentPast(ctx context.Context, claims *Claims, matchID, ticketID string, now time.Time) (bool, error) {
	var stored time.Time
	e, err := d.kv.Get(ctx, matchID)
	switch {
	case err == nil:
		stored = e.Created()
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return false, fmt.Errorf("record of match %s: %w", matchID, err)
	default:
		c, err := claims.Read(ctx, ticketID)
		if err != nil {
			return false, err
		}
		if c.Owner != MatchOwner(matchID) || c.Match == nil {
			return false, nil
		}
		stored = c.Created
	}
	if now.Sub(stored) < UnsentGrace {
		return false, nil
	}
	sent, err := d.Sent(ctx, matchID)
	return !sent, err
}

// UnsentMsgID is the message id of ticket ticketID published again for
// match matchID, which its claim names and which was never sent
// (Publisher.TicketForUnsent): one message per ticket and match within
// the duplicate window, however many frontends' expiries find it so.
func UnsentMsgID(ticketID, matchID string) string { return ticketID + "-unsent-" + matchID }

// TicketForUnsent publishes t again, as TicketUnder does but under
// UnsentMsgID, for match matchID that holds its claim and was never sent
// (Decisions.Sent) UnsentGrace after it was stored: its shard's
// owner takes the ticket in, meets the claim and settles the match
// (sends it, decides it, or undoes a dead matcher's partial claims),
// even if t's first message is gone from the stream. A frontend's expiry
// calls it (tickets.Service.Expire).
func (p *Publisher) TicketForUnsent(ctx context.Context, region, tier string, t Ticket, rulesVersion, matchID string) error {
	msg, err := TicketMsg(ctx, p.subj, region, tier, t, rulesVersion)
	if err != nil {
		return err
	}
	msg.Header.Set(jetstream.MsgIDHeader, UnsentMsgID(t.TicketID, matchID))
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish %s: %w", msg.Subject, err)
	}
	return nil
}
