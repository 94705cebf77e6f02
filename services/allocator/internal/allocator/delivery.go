package allocator

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// A delivery is one NATS delivery of a match's request, as the handler's
// retries of it share it: its message's metadata. It holds a token of
// its own, which its reservation of the match's record carries
// (record.Delivery), whether a try of it asked the backend, and whether
// its outcome was counted (countOnce). Every delivery's token is new, so
// no two requests share one.
type delivery struct{ meta message.Metadata }

// The metadata a delivery keeps (set by the allocator, after the
// message's headers are copied in, so a header cannot name it).
const (
	metaDelivery = "quickmatch_delivery"
	metaAsked    = "quickmatch_delivery_asked"
	metaCounted  = "quickmatch_delivery_counted"
	metaReserved = "quickmatch_delivery_reserved"
)

// newDelivery marks msg as a delivery of its own (the router's
// unmarshaler, for every message NATS delivers).
func newDelivery(msg *message.Message) {
	msg.Metadata.Set(metaDelivery, watermill.NewUUID())
	msg.Metadata.Set(metaAsked, "")
	msg.Metadata.Set(metaCounted, "")
	msg.Metadata.Set(metaReserved, "")
}

// token is the delivery's token ("" for none: a message not marked).
func (d delivery) token() string { return d.meta.Get(metaDelivery) }

// asking records that a try of the delivery is about to ask the backend.
func (d delivery) asking() {
	if d.meta != nil {
		d.meta.Set(metaAsked, "yes")
	}
}

// asked says whether a try of the delivery asked the backend.
func (d delivery) asked() bool { return d.meta.Get(metaAsked) != "" }

// reserving records that a try of the delivery is about to write key's
// reservation (its answer may be lost while it is stored).
func (d delivery) reserving(key string) {
	if d.meta != nil {
		d.meta.Set(metaReserved, key)
	}
}

// reserved is the key of the record a try of the delivery reserved, or
// tried to ("" for none).
func (d delivery) reserved() string { return d.meta.Get(metaReserved) }

// countOnce says whether the delivery's outcome is still to be counted,
// and marks it counted: a retry of a try that allocated (its results
// lost) finds the same server, which is no second allocation.
func (d delivery) countOnce() bool {
	if d.meta == nil {
		return true
	}
	if d.meta.Get(metaCounted) != "" {
		return false
	}
	d.meta.Set(metaCounted, "yes")
	return true
}

// owns says whether r is a pending record of this delivery that no try
// of it took to the backend: one the delivery may take again at once
// (records.reserve).
func (d delivery) owns(r record) bool {
	return d.token() != "" && r.Delivery == d.token() && !d.asked()
}

type deliveryKey struct{}

// withDelivery is ctx carrying the delivery msg is.
func withDelivery(ctx context.Context, msg *message.Message) context.Context {
	return context.WithValue(ctx, deliveryKey{}, delivery{meta: msg.Metadata})
}

// deliveryFrom is the delivery withDelivery gave ctx, or none (its
// records are no one's own).
func deliveryFrom(ctx context.Context) delivery {
	d, _ := ctx.Value(deliveryKey{}).(delivery)
	return d
}
