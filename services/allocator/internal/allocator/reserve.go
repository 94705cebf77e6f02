package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// reserve takes the match's record as pending and returns its revision,
// or the record, when it already holds a server.
//
// A pending record of ctx's own delivery (deliveryFrom) that no try of
// it took to the backend is taken again at once: an earlier try wrote
// it and lost the answer (NATS slow or cut). No other request can be
// allocating the match then: every other one finds the record held, a
// takeover of it as stale writes its own token, and the tries of one
// delivery never overlap. So the delivery goes on as soon as NATS
// answers, where it used to wait, as for another request's, until the
// record was stale (events.AllocatorReservationStale: 30 s), and its players heard
// their assignment that much later (chaos run s of #20's fourteenth
// round: 14 matches). A delivery that asked the backend still waits, as
// before, for the record to go stale: a second call sooner could come
// before the kube backend sees the first call's server (its informers),
// and allocate another. A reservation that a delivery of this process
// left when all its tries ended, none of them asking the backend
// (unasked.go), is taken over at once by the next request for the match.
func (rs *records) reserve(ctx context.Context, key string) (uint64, *record, error) {
	d := deliveryFrom(ctx)
	pending := func() []byte {
		b, _ := json.Marshal(record{Pending: rs.now().UnixMilli(), Delivery: d.token()}) // always encodes
		return b
	}
	d.reserving(key)
	for deleted := 0; ; {
		// Create first: a match's first request (nearly all of them) takes
		// the record in one round trip; only a repeat reads it.
		rev, err := rs.kv.Create(ctx, key, pending())
		if err == nil {
			return rev, nil, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, nil, fmt.Errorf("allocation record of %s: %w", key, err)
		}
		// Read from the leader, which refused the create: a replica behind
		// (a cut just healed) answers that there is no record, and the
		// loop would spin creates and gets until it caught up.
		e, err := rs.reader().Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			// Deleted just now: create it again. But nats.go's create of a
			// deleted key reads the key with a direct get, which a replica
			// behind may still answer with the old record: ErrKeyExists
			// until it catches up. So a few tries, spaced, and then the
			// delivery's own backoff: never a loop without a wait.
			if deleted++; deleted > reserveDeletedTries {
				return 0, nil, fmt.Errorf("match %s: %w", key, errReplicaBehind)
			}
			select {
			case <-ctx.Done():
				return 0, nil, fmt.Errorf("allocation record of %s: %w", key, ctx.Err())
			case <-time.After(time.Duration(deleted) * reserveDeletedWait):
			}
			continue
		case err != nil:
			return 0, nil, fmt.Errorf("allocation record of %s: %w", key, err)
		}
		var r record
		_ = json.Unmarshal(e.Value(), &r)
		if r.Failed {
			return 0, nil, failedAs(r)
		}
		if r.Requeue != "" {
			return 0, nil, fmt.Errorf("match %s: %w", key, errRequeued)
		}
		if r.Server != nil {
			rs.log.Info("match allocated before; same server", "match_id", key, "server", r.Server.Name)
			return 0, &r, nil
		}
		unasked := rs.unasked.has(key, r.Delivery)
		if !rs.stale(r) && !d.owns(r) && !unasked {
			return 0, nil, fmt.Errorf("match %s: %w", key, errInProgress)
		}
		if rev, err := rs.kv.Update(ctx, key, pending(), e.Revision()); err == nil {
			if unasked {
				rs.unasked.forget(r.Delivery)
				rs.log.Info("match's reservation left by a delivery that asked nothing; taken over", "match_id", key)
				rs.reconciledBy("unasked_taken")
			}
			return rev, nil, nil
		}
		// Someone else took the stale pending record over: read it again.
	}
}

// A record read as deleted at the leader after a create found it is
// created again reserveDeletedTries times at most, reserveDeletedWait
// more apart each time.
const (
	reserveDeletedTries = 3
	reserveDeletedWait  = 50 * time.Millisecond
)

// reader is the bucket read from its stream's leader, where one was
// set, for reads that must see what a write the leader took just said.
func (rs *records) reader() jetstream.KeyValue {
	if rs.leader != nil {
		return rs.leader
	}
	return rs.kv
}
