package allocator

import (
	"errors"
	"maps"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// unasked are the reservations this allocator's deliveries left when
// every try of theirs failed without asking the backend, by the
// delivery's id (its token): the match and when the delivery ended. A reservation's create can be
// stored while its answer is lost (NATS slow, or cut off just then); the
// delivery's own retries take it again (delivery.owns), but once they
// are over the match's redelivery, a delivery of its own, found the
// record held by another request and waited for it to go stale
// (events.AllocatorReservationStale, 30 s): chaos S51 had 4 tickets
// 39 s late so. No try of an ended delivery runs any more, and none
// asked the backend, so nothing can be allocating under its reservation:
// the next request for the match in this process takes it over at once
// (reserve). A request in another process cannot know that the delivery
// ended: this one deletes the reservation once NATS answers it
// (reconcile), and that request reserves the match then.
type unasked struct {
	mu sync.Mutex
	m  map[string]unaskedReservation
}

// unaskedReservation is the match of a reservation left, and when.
type unaskedReservation struct {
	matchID string
	at      time.Time
}

// At most maxUnasked reservations are kept; full, those past their
// reservation's life are forgotten (the record is stale by then, and
// taken over anyway), and still full, nothing more is kept: that match
// waits, as before.
const maxUnasked = 4 * events.AllocatorMaxAckPending

// leave keeps the reservation of token for matchID (nil: nothing is
// kept, as in the tests that make records of their own).
func (l *unasked) leave(matchID, token string, at time.Time) {
	if l == nil || token == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]unaskedReservation{}
	}
	if len(l.m) >= maxUnasked {
		l.forgetStaleLocked(at)
	}
	if len(l.m) < maxUnasked {
		l.m[token] = unaskedReservation{matchID: matchID, at: at}
	}
}

// forgetStale drops the reservations past their life at now: any
// request takes them over as stale.
func (l *unasked) forgetStale(now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetStaleLocked(now)
}

func (l *unasked) forgetStaleLocked(now time.Time) {
	maps.DeleteFunc(l.m, func(_ string, old unaskedReservation) bool {
		return now.Sub(old.at) >= events.AllocatorReservationStale
	})
}

// has says whether the reservation of token for matchID was left by a
// delivery of this process that ended.
func (l *unasked) has(matchID, token string) bool {
	if l == nil || token == "" {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[token].matchID == matchID
}

// all is every reservation kept, by token.
func (l *unasked) all() map[string]unaskedReservation {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.m)
}

// forget drops the reservation of token: its record is taken.
func (l *unasked) forget(token string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, token)
}

// leaveUnasked is the middleware that sees each delivery once all its
// tries ended (outside the retries): one that failed after reserving its
// match's record (delivery.reserving) and without asking the backend
// leaves the reservation to the match's next request here.
func (rs *records) leaveUnasked(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		d := delivery{meta: msg.Metadata}
		// One whose last try found another's reservation, or none, holds
		// none: its create was refused.
		if key := d.reserved(); err != nil && key != "" && !d.asked() && !errors.Is(err, errInProgress) && !errors.Is(err, errReplicaBehind) {
			rs.unasked.leave(key, d.token(), rs.now())
		}
		return out, err
	}
}
