package events

import "context"

// Cancel tells matchers that a ticket was cancelled, so they drop it from
// their pool at once. It is a hint published on core NATS: the claim made
// before it is what guarantees that a cancelled ticket is never matched.
type Cancel struct {
	SchemaVersion int    `json:"schema_version"`
	TicketID      string `json:"ticket_id"`
	Region        string `json:"region"`
	Tier          string `json:"tier"`
	Mode          string `json:"mode"`
}

// DecodeCancel reads a cancel notice strictly.
func DecodeCancel(data []byte) (Cancel, error) {
	return decodeChecked("cancel", data, DecodeStrict, func(c *Cancel, fe *fieldErrors) {
		fe.token("ticket_id", c.TicketID)
	})
}

// CancelNotice asks the shard region.tier to drop a ticket that was just
// decided (cancelled, expired, superseded). It is a hint on core NATS,
// not stored: the ticket's claim is what keeps it out of every match, so a
// lost notice only leaves the ticket in a pool until a commit or an expiry
// meets its claim.
func (p *Publisher) CancelNotice(ctx context.Context, region, tier, ticketID, mode string) error {
	msg, err := NewMsg(ctx, p.subj.Cancel(region, tier), "", Cancel{
		SchemaVersion: SchemaVersion, TicketID: ticketID, Region: region, Tier: tier, Mode: mode,
	})
	if err != nil {
		return err
	}
	return p.js.Conn().PublishMsg(msg)
}
