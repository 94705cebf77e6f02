package events

import "context"

// OfferMsgID is the message id of ticket ticketID offered to region: a
// home shard that retries an offer (its publish timed out, say) stores it
// once in that region's shard.
func OfferMsgID(ticketID, region string) string { return ticketID + "-at-" + region }

// Offer publishes t as a visitor to another region's shard, to, on its
// subject of the offers stream, marked with homeRegion (HeaderHome), the
// region of the shard the ticket was published to. Build t with TicketFor.
// Its error is the publish's own, unwrapped: the matcher logs it as it is.
func (p *Publisher) Offer(ctx context.Context, to Shard, homeRegion string, t Ticket) error {
	msg, err := NewMsg(ctx, p.subj.Offer(to.Region, to.Tier), OfferMsgID(t.TicketID, to.Region), t)
	if err != nil {
		return err
	}
	msg.Header.Set(HeaderHome, homeRegion)
	_, err = p.js.PublishMsg(ctx, msg)
	return err
}
