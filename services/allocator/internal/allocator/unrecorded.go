package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// unrecorded are the servers this allocator was given for matches whose
// record's write then failed (NATS slow, or cut off just then), by match
// id, each with the token of the reservation it was given under. The
// next request for the match in this process (a retry of the delivery,
// or its redelivery) writes that server into the reservation, if the
// record is still it, instead of asking the backend again. Before, it
// waited, as every request does for a reservation it did not write, for
// the record to go stale (events.AllocatorReservationStale, 30 s): chaos
// S49e had 12 tickets 27-41 s late so. A request in another process
// still waits: it cannot know what the backend gave.
type unrecorded struct {
	mu sync.Mutex
	m  map[string]given
}

// given is a server given for a match and not recorded: the record to
// write, under the reservation of token, and when it was given.
type given struct {
	token string
	rec   record
	at    time.Time
}

// maxUnrecorded bounds the servers kept: a match's at most, in flight.
const maxUnrecorded = events.AllocatorMaxAckPending

// keep remembers g for matchID (nil: nothing is kept, as in the tests
// that make records of their own).
func (u *unrecorded) keep(matchID string, g given) {
	if u == nil || g.token == "" {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]given{}
	}
	if len(u.m) < maxUnrecorded {
		u.m[matchID] = g
	}
}

// take hands over and forgets what is kept for matchID. One given before
// its reservation could go stale is not handed over: another request
// may have taken the record over since, and the record says whose server
// the match has.
func (u *unrecorded) take(matchID string, now time.Time) (given, bool) {
	if u == nil {
		return given{}, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	g, ok := u.m[matchID]
	delete(u.m, matchID)
	return g, ok && now.Sub(g.at) < events.AllocatorReservationStale
}

// recordServer writes r, the server the backend just gave, into the
// match's reservation (revision rev). The server is ours now: try hard
// to remember it, stopping or not, within one call's bound for every try
// and wait together (what events.AllocatorStopGrace leaves after the
// backend's call): each try waited its own 5 s before, 26.5 s in all
// when NATS did not answer. The caller keeps a server it could not
// record (unrecorded).
func (rs *records) recordServer(ctx context.Context, key string, r record, rev uint64) error {
	data, _ := json.Marshal(r) // always encodes
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), events.ClaimCallTimeout)
	defer cancel()
	var err error
	for i := range 5 {
		if _, err = rs.kv.Update(wctx, key, data, rev); err == nil || i == 4 {
			break
		}
		select {
		case <-wctx.Done():
		case <-time.After(time.Duration(50<<i) * time.Millisecond):
		}
		if wctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("record allocation of %s: %w", key, err)
	}
	return nil
}

// recordGiven writes g's server into the match's record if the record is
// still the pending reservation g was given under (compare-and-set on
// its revision). done: the record holds a server now, g's or one a write
// whose answer was lost stored before; not done: the record is no longer
// g's reservation (given back, failed, requeued, taken over), and the
// request goes the usual way. A write that fails keeps g for the next
// try.
func (rs *records) recordGiven(ctx context.Context, key string, g given) (r record, done bool, err error) {
	e, err := rs.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return record{}, false, nil
	case err != nil:
		rs.unrecorded.keep(key, g)
		return record{}, false, fmt.Errorf("allocation record of %s: %w", key, err)
	}
	var cur record
	_ = json.Unmarshal(e.Value(), &cur)
	switch {
	case cur.Server != nil:
		return cur, true, nil
	case cur.Pending == 0 || cur.Delivery != g.token || cur.Failed || cur.Requeue != "":
		return record{}, false, nil
	}
	data, _ := json.Marshal(g.rec) // always encodes
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), events.ClaimCallTimeout)
	defer cancel()
	if _, err := rs.kv.Update(wctx, key, data, e.Revision()); err != nil {
		rs.unrecorded.keep(key, g)
		return record{}, false, fmt.Errorf("record allocation of %s: %w", key, err)
	}
	rs.log.Info("match's server recorded on a later try", "match_id", key)
	return g.rec, true, nil
}
