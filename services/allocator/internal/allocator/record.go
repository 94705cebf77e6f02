package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
)

// record is what the allocations bucket keeps per match: the server once
// allocated, or, while an allocation is under way, when it began.
type record struct {
	Server  *Server `json:"server,omitempty"`
	Pending int64   `json:"pending,omitempty"` // Unix ms
	// Delivery is the token of the delivery whose request reserved a
	// pending record (newDelivery; none from an allocator before it):
	// a retry of that delivery finds the record its own (reserve).
	Delivery string `json:"delivery,omitempty"`
	// Failed is set, by compare-and-set, before the players are told the
	// match failed: from then on no request allocates it, so a match
	// never ends both failed and assigned.
	Failed bool `json:"failed,omitempty"`
	// Reason, in a failed record, is what its players were told
	// (toldReason; for a match that was to fill a room, why it could not):
	// a later delivery of the match (their results lost, its ack lost)
	// tells them the same, not that it failed before.
	Reason string `json:"reason,omitempty"`
	// Requeue is set, by compare-and-set, before any claim of the match
	// is given back for a requeue (requeueing), and once its tickets are
	// queued again (requeued): from then on no request allocates it, for
	// a ticket whose claim was given back may be in another match by
	// then. A later delivery finishes the requeue instead.
	Requeue string `json:"requeue,omitempty"`
	// Until, in the record of a match that fills a running room, is when
	// its players' join tokens expire (Unix ms), and with them the
	// promise of their seats: a repeat of the match signs the same.
	Until int64 `json:"until,omitempty"`
	// Seat, in the record of a match that fills a running room, is the
	// room's shape its players' join tokens carry (Team left out): a
	// repeat of the match signs the same tokens even once the room's
	// match record is gone (the room closed after the match was placed).
	Seat *jointoken.Seat `json:"seat,omitempty"`
	// Promised and Sent, in a running room's record, are the seats
	// promised to the matches that fill it and the players sent before
	// (promise.go).
	Promised []promise `json:"promised,omitempty"`
	Sent     []string  `json:"sent,omitempty"`
	// Backfilled, in a running room's record, counts the players
	// promised a seat in it, less those given back since (refill): it is
	// backfilled with no more than its Turnover allows (turnover.go).
	// BackfilledAt is when that count was last given back to (Unix ms).
	Backfilled   int   `json:"backfilled,omitempty"`
	BackfilledAt int64 `json:"backfilled_at,omitempty"`
}

// failedBefore: the match's record says it failed; its players were (or
// are being) told so, and why (record.Reason). It is permanent (no retry
// can unfail a match) and its text is that reason, which a later
// delivery tells the players and dead-letters again (the same message
// ids: stored once). A record from before reasons were kept gives the
// old text, which wraps events.ErrInvalid ("invalid payload: this match
// failed before").
type failedBefore struct{ reason string }

func (e *failedBefore) Error() string {
	if e.reason == "" {
		return errUnknownFailure.Error()
	}
	return e.reason
}

func (e *failedBefore) Is(target error) bool {
	return target == ErrPermanent || e.reason == "" && target == events.ErrInvalid
}

// errUnknownFailure is the text of a failed record with no reason.
var errUnknownFailure = fmt.Errorf("%w: this match failed before", events.ErrInvalid)

// failedAs is the failure a failed record r says the match had.
func failedAs(r record) error { return &failedBefore{reason: r.Reason} }

// The requeue states of a record (record.Requeue).
const (
	requeueing = "requeueing"
	requeued   = "requeued"
)

// errRequeued: the match's record says its tickets are (being) queued
// again. It is permanent (no retry allocates the match): the give-up
// finishes the requeue (failure.requeueMatch).
var errRequeued = Permanent(errors.New("this match's tickets were queued again"))

// errInProgress is retried: another request for the match is allocating.
var errInProgress = errors.New("another request for this match is being allocated")

// errReplicaBehind is retried as errInProgress is: the match's record is
// deleted at the bucket's leader, and the replica that answers the
// create's read still holds it (reserve). The request holds no
// reservation then either.
var errReplicaBehind = errors.New("the record is deleted at the leader and still held at a replica behind")

// records keeps the allocations bucket's record of each match, and so
// decides, by compare-and-set, whether a match gets a server or fails.
type records struct {
	kv      jetstream.KeyValue
	backend Backend
	log     *slog.Logger
	now     func() time.Time
	bound   time.Duration // of a backend call; 0: events.AllocatorBackendCall
	// unrecorded are the servers given whose record's write failed (nil:
	// none is kept).
	unrecorded *unrecorded
	// unasked are the reservations this process's deliveries left without
	// asking the backend (nil: none is kept).
	unasked *unasked
	// reconciled counts the records reconciled, by how (nil: uncounted).
	reconciled *prometheus.CounterVec
	// leader is kv read from its stream's leader (nil: kv), for reserve
	// and recordGiven: a replica behind the cut that lost a write answers
	// a direct get without the reservation.
	leader jetstream.KeyValue
}

// reconciledBy counts a record left in the middle of an allocation and
// reconciled, by how.
func (rs *records) reconciledBy(how string) {
	if rs.reconciled != nil {
		rs.reconciled.WithLabelValues(how).Inc()
	}
}

// reservedBy says whether r is still the pending reservation the
// delivery id wrote: no server, no failure, no requeue since.
func (r record) reservedBy(id string) bool {
	return r.Pending != 0 && r.Delivery == id && r.Server == nil && !r.Failed && r.Requeue == ""
}

// stale says whether a pending record's owner is gone: it was written
// longer than a reservation lives ago, so its allocator died or is cut
// off.
func (rs *records) stale(r record) bool {
	return rs.now().Sub(time.UnixMilli(r.Pending)) >= events.AllocatorReservationStale
}

// allocate gives a match one game server however often, and however
// concurrently, its request comes. The match's record is reserved first
// (created as pending, compare-and-set), so a concurrent request waits and
// then reuses the server; the server is written into the record right
// after the backend gives it. A pending record older than a reservation
// lives (events.AllocatorReservationStale) belongs to an allocator that
// died or is cut off, and is taken over; one this
// same delivery reserved is its own (reserve). reused is true when the
// record already held a server.
func (rs *records) allocate(ctx context.Context, m events.Match) (srv Server, reused bool, err error) {
	r, reused, err := rs.place(ctx, m, func(ctx context.Context, m events.Match) (record, error) {
		srv, err := rs.backend.Allocate(ctx, m)
		if err != nil {
			return record{}, &backendError{err: err}
		}
		return record{Server: &srv}, nil
	})
	if err != nil {
		return Server{}, false, err
	}
	return *r.Server, reused, nil
}

// place is allocate with find in the backend's stead: a match that fills
// a running room (Match.Backfill) is given the room's server the same
// way, once however often its request comes. find returns the record to
// keep, with its Server set.
func (rs *records) place(ctx context.Context, m events.Match, find func(context.Context, events.Match) (record, error)) (r record, reused bool, err error) {
	key := m.MatchID
	if u, ok := rs.unrecorded.recall(key); ok {
		if r, done, reused, err := rs.recordGiven(ctx, key, u); done || err != nil {
			return r, reused, err
		}
	}
	rev, held, err := rs.reserve(ctx, key)
	switch {
	case err != nil:
		return record{}, false, err
	case held != nil:
		return *held, true, nil
	}
	deliveryFrom(ctx).asking() // before: a find cut short may have asked
	// A stopping allocator lets the call finish (ctx's end does not cut
	// it), within its bound, which the shutdown grace covers
	// (Config.CloseTimeout, at least events.AllocatorStopGrace with the
	// kube backend; one the process exits under leaves its reservation
	// to go stale, as a cut does). Cut short, the backend may have
	// allocated.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rs.callBound())
	r, err = find(fctx, m)
	cut := fctx.Err() != nil && errors.Is(err, context.DeadlineExceeded)
	cancel()
	if err != nil {
		// Delete the pending record so the retry can allocate, unless
		// the call was cut short by its bound: the backend may have
		// allocated then, and the reservation is left to go stale, by
		// when the next request finds that server (the kube backend's
		// informers), where one sooner would take another.
		if !cut {
			_ = rs.kv.Delete(context.WithoutCancel(ctx), key, jetstream.LastRevision(rev))
		}
		return record{}, false, fmt.Errorf("allocate match %s: %w", key, err)
	}
	if err := rs.recordServer(ctx, key, r, rev); err != nil {
		rs.unrecorded.remember(key, unrecordedServer{token: deliveryFrom(ctx).token(), rec: r, at: rs.now()}, rs.log)
		return record{}, false, err
	}
	return r, false, nil
}

// callBound is events.AllocatorBackendCall, or the test's bound.
func (rs *records) callBound() time.Duration {
	if rs.bound > 0 {
		return rs.bound
	}
	return events.AllocatorBackendCall
}

// placed is the record of a match that was given a server before (a
// repeat: an ack lost, a matcher's late retry), if it was: ok is false
// for a match with no record, or one with no server.
func (rs *records) placed(ctx context.Context, matchID string) (r record, ok bool, err error) {
	e, err := rs.kv.Get(ctx, matchID)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return record{}, false, nil
	case err != nil:
		return record{}, false, fmt.Errorf("allocation record of %s: %w", matchID, err)
	}
	_ = json.Unmarshal(e.Value(), &r)
	return r, r.Server != nil, nil
}

// markFailed records, by compare-and-set, that the match failed, and
// why (reason: what its players are told). It refuses when a server was
// allocated for it (the retry will assign it), its tickets are being
// queued again, or a request is allocating it now. before says its
// record said so already; told is the reason the record keeps (the one
// it had then).
func (rs *records) markFailed(ctx context.Context, matchID, reason string) (told string, before bool, err error) {
	told = reason
	err = rs.mark(ctx, matchID, record{Failed: true, Reason: reason}, func(r record) (bool, error) {
		switch {
		case r.Failed:
			told, before = failedAs(r).Error(), true
			return true, nil
		case r.Requeue != "":
			return false, fmt.Errorf("match %s: %w", matchID, errRequeued)
		}
		return false, rs.unsettled(matchID, r)
	})
	return told, before, err
}

// markRequeueing records, by compare-and-set, that the match's tickets
// are being queued again (record.Requeue), before any claim is given
// back; done says they were queued again before. It refuses as
// markFailed does, and for a match that failed.
func (rs *records) markRequeueing(ctx context.Context, matchID string) (done bool, err error) {
	err = rs.mark(ctx, matchID, record{Requeue: requeueing}, func(r record) (bool, error) {
		switch {
		case r.Requeue == requeued:
			done = true
			return true, nil
		case r.Requeue == requeueing:
			return true, nil
		case r.Failed:
			return false, failedAs(r)
		}
		return false, rs.unsettled(matchID, r)
	})
	return done, err
}

// markRequeued records that the match's tickets are queued again: a
// later delivery of it (an ack lost, a matcher's late retry) stores
// nothing more.
func (rs *records) markRequeued(ctx context.Context, matchID string) error {
	return rs.mark(ctx, matchID, record{Requeue: requeued}, func(r record) (bool, error) {
		switch r.Requeue {
		case requeued:
			return true, nil
		case requeueing:
			return false, nil
		}
		return false, fmt.Errorf("match %s: its record is no longer requeueing", matchID)
	})
}

// unsettled is why a match's record cannot be marked given up: it holds
// a server (the retry will assign it) or a request is allocating it.
func (rs *records) unsettled(matchID string, r record) error {
	switch {
	case r.Server != nil:
		return fmt.Errorf("match %s has a server (%s)", matchID, r.Server.Name)
	case r.Pending != 0 && !rs.stale(r):
		return fmt.Errorf("match %s: %w", matchID, errInProgress)
	}
	return nil
}

// mark writes next as the match's record, by compare-and-set, unless
// decide, shown the record there, says it is marked already (true) or
// must not be (an error). No record counts as one that may be marked.
func (rs *records) mark(ctx context.Context, matchID string, next record, decide func(record) (bool, error)) error {
	data, _ := json.Marshal(next) // always encodes
	// Each pass loses only to a concurrent write of the record; a few
	// passes, then the match is nakked and decided on its next delivery.
	for range 5 {
		e, err := rs.kv.Get(ctx, matchID)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			_, err = rs.kv.Create(ctx, matchID, data)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			return err
		}
		if err != nil {
			return err
		}
		var r record
		_ = json.Unmarshal(e.Value(), &r)
		if already, err := decide(r); already || err != nil {
			return err
		}
		if _, err := rs.kv.Update(ctx, matchID, data, e.Revision()); err == nil {
			return nil
		}
	}
	return fmt.Errorf("match %s: its allocation record kept changing", matchID)
}

// backendError is an error of the Backend: not NATS's (unavailable), so
// the match is given up at RetryDeadline as before.
type backendError struct{ err error }

func (e *backendError) Error() string { return e.err.Error() }
func (e *backendError) Unwrap() error { return e.err }
