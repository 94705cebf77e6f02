package events

import "context"

// OfferMsgID is the message id of ticket ticketID offered to shard to: a
// home shard that retries an offer (its publish timed out, say) stores it
// once in that shard, and a ticket offered to two shards of one region
// (another region's, then a neighbouring tier's) is stored in each.
func OfferMsgID(ticketID string, to Shard) string { return ticketID + "-at-" + to.String() }

// Offer publishes t as a visitor to another shard, to (another region's
// shard of the same tier, or a neighbouring tier's in the same region),
// on its subject of the offers stream, marked with homeRegion
// (HeaderHome), the region of the shard the ticket was published to.
// Build t with TicketFor, so it carries what the rules judge. Its error
// is the publish's own, unwrapped: the matcher logs it as it is.
func (p *Publisher) Offer(ctx context.Context, to Shard, homeRegion string, t Ticket) error {
	msg, err := NewMsg(ctx, p.subj.Offer(to.Region, to.Tier), OfferMsgID(t.TicketID, to), t)
	if err != nil {
		return err
	}
	msg.Header.Set(HeaderHome, homeRegion)
	_, err = p.js.PublishMsg(ctx, msg)
	return err
}
