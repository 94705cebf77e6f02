package allocator

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// settleEvery is how often an allocator tries to settle the records its
// deliveries left unsettled (settle).
const settleEvery = time.Second

// settle writes, every settleEvery until ctx ends, what this allocator's
// deliveries left unsettled in their matches' records: a server given
// and not recorded is written into its reservation (recordGiven), and a
// reservation left without asking the backend is given back (deleted by
// compare-and-set). The match's next request may come to another
// allocator, which cannot know either: it waited for the record to go
// stale (events.AllocatorReservationStale, 30 s), and its players heard
// their assignment that much later (chaos S51b: 4 tickets 31 s late).
// Now it finds the record settled once NATS answers this allocator
// again: the server to reuse, or no record, to reserve its own. The
// players are told by that request (its delivery is nakked, and comes
// back); nothing here tells them.
func (rs *records) settle(ctx context.Context) {
	t := time.NewTicker(settleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rs.settleOnce(ctx)
	}
}

// settleOnce tries once to settle every record left unsettled, each
// within a call's bound.
func (rs *records) settleOnce(ctx context.Context) {
	for _, key := range rs.unrecorded.keys() {
		u, ok := rs.unrecorded.recall(key) // or a request took it meanwhile
		if !ok {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, events.ClaimCallTimeout)
		_, _, _, _ = rs.recordGiven(cctx, key, u) // puts u back when its write fails
		cancel()
	}
	for token, l := range rs.left.all() {
		cctx, cancel := context.WithTimeout(ctx, events.ClaimCallTimeout)
		done := rs.giveBack(cctx, token, l.matchID)
		cancel()
		if done || rs.now().Sub(l.at) >= events.AllocatorReservationStale {
			rs.left.forget(token)
		}
	}
}

// giveBack deletes the match's record if it is still the reservation of
// token, by compare-and-set: done says it is no longer (or never was).
// A record not found is kept a while all the same: the reservation's
// create, answered late, may still be on its way.
func (rs *records) giveBack(ctx context.Context, token, matchID string) (done bool) {
	e, err := rs.reader().Get(ctx, matchID)
	if err != nil {
		return false
	}
	var r record
	_ = json.Unmarshal(e.Value(), &r)
	if r.Pending == 0 || r.Delivery != token || r.Server != nil || r.Failed || r.Requeue != "" {
		return true
	}
	// Changed meanwhile (taken over), the delete is refused, and the
	// next try reads whose it is.
	if err := rs.kv.Delete(ctx, matchID, jetstream.LastRevision(e.Revision())); err != nil {
		return false
	}
	rs.log.Info("match's reservation left by an ended delivery; given back", "match_id", matchID)
	rs.settledBy("given_back")
	return true
}
