package allocator

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// reconcileEvery is how often an allocator reconciles the records its
// deliveries left in the middle of an allocation (reconcile).
const reconcileEvery = time.Second

// reconcile makes the records this allocator's deliveries left in the
// middle of an allocation say what happened, every reconcileEvery until
// ctx ends: a server given and not recorded (unrecorded) is written into
// its reservation (recordGiven), and a reservation whose delivery ended
// without asking the backend (unasked) is deleted by compare-and-set.
// The match's next request may come to another allocator, which knows
// neither: it waited for the reservation to go stale
// (events.AllocatorReservationStale, 30 s), and the players heard their
// assignment that much later (chaos S51b: 4 tickets 31 s late). Now it
// finds the record reconciled once NATS answers this allocator again:
// the server to reuse, or no record, to reserve its own. The players are
// told by that request (its delivery was nakked, and comes back);
// nothing here tells them.
func (rs *records) reconcile(ctx context.Context) {
	t := time.NewTicker(reconcileEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, events.ClaimCallTimeout)
		rs.reconcileOnce(pctx)
		cancel()
	}
}

// reconcileOnce tries once to reconcile every record kept, within ctx
// for them all; the first one NATS does not answer ends the pass (the
// next one tries again), so a cut costs a pass one call's bound, not one
// per record.
func (rs *records) reconcileOnce(ctx context.Context) {
	for _, key := range rs.unrecorded.keys() {
		u, ok := rs.unrecorded.recall(key) // or a request took it meanwhile
		if !ok {
			continue
		}
		if _, _, _, err := rs.recordGiven(ctx, key, u); err != nil && unavailable(err) {
			return // u is put back
		}
	}
	rs.unasked.forgetStale(rs.now()) // any request takes those over now
	for id, l := range rs.unasked.all() {
		done, err := rs.deleteUnasked(ctx, id, l.matchID)
		if done {
			rs.unasked.forget(id)
		}
		if err != nil && unavailable(err) {
			return
		}
	}
}

// deleteUnasked deletes the match's record if it is still the
// reservation of the delivery id, by compare-and-set: done says it is no
// longer (or never was). A record not found is kept a while all the
// same: the reservation's create, answered late, may still be on its
// way.
func (rs *records) deleteUnasked(ctx context.Context, id, matchID string) (done bool, err error) {
	e, err := rs.reader().Get(ctx, matchID)
	if err != nil {
		return false, err
	}
	var r record
	_ = json.Unmarshal(e.Value(), &r)
	if !r.reservedBy(id) {
		return true, nil
	}
	// Changed meanwhile (taken over), the delete is refused, and the
	// next pass reads whose it is.
	if err := rs.kv.Delete(ctx, matchID, jetstream.LastRevision(e.Revision())); err != nil {
		return false, err
	}
	rs.log.Info("match's reservation left by a delivery that asked nothing; deleted", "match_id", matchID)
	rs.reconciledBy("unasked_deleted")
	return true, nil
}
