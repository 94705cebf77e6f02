package tickets

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// unstored are the records of tickets answered while their record could
// not be stored: a matcher put the ticket in a match, or may yet (its
// fate unknown: fateUnknown), while its creation's writes failed, and the put
// tried once more after the withdrawal failed too (finishOrWithdraw). An
// error would make each a no-show in its partners' game (chaos S57: 8 in
// one second, a tickets bucket without a leader for several seconds), so
// the creation answers the ticket, and its record is put again here, in
// the background, until stored or until its hold ends (putLater).
// Meanwhile this frontend's reads of the record are answered from here
// (Record), so the client that follows its ticket right after the 202,
// and the expiry of this frontend's tracker, find it. What it does not
// cover: another frontend answers 404 for the ticket until the put
// lands, and every frontend does once this one gave up (each record logs
// it); a frontend that stops makes one last try of each (putUnstored),
// and one that dies loses them.
type unstored struct {
	mu      sync.Mutex
	recs    map[string]heldRecord // by ticket id
	unknown int                   // how many are of unknown fate
}

// heldRecord is a record's value, and whether its ticket's fate is
// unknown (fateUnknown) rather than a match.
type heldRecord struct {
	data    []byte
	unknown bool
}

// unstoredFor is how long a record is tried past the moment its ticket's
// outcome may come (at once for a match): the outcome reaches its client
// within seconds, and a bucket without a leader for longer is an outage
// its operator sees.
const unstoredFor = time.Minute

// maxUnstored bounds the records held at once, each a goroutine and a
// record's value (events.MaxPayloadBytes at most; a few hundred bytes as
// a rule). Tickets of unknown fate, held up to their max wait, may take
// half: a long outage of the tickets bucket does not leave none for the
// matched ones, whose clients a game waits for.
const maxUnstored = 10000

// get returns the record held for id.
func (u *unstored) get(id string) ([]byte, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	h, ok := u.recs[id]
	return h.data, ok
}

// hold keeps data for id (unknown: its ticket's fate is unknown): fresh
// when id was not held already, ok unless no more may be held.
func (u *unstored) hold(id string, data []byte, unknown bool) (fresh, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, held := u.recs[id]; held {
		return false, true
	}
	if len(u.recs) >= maxUnstored || unknown && u.unknown >= maxUnstored/2 {
		return false, false
	}
	if u.recs == nil {
		u.recs = map[string]heldRecord{}
	}
	u.recs[id] = heldRecord{data: data, unknown: unknown}
	if unknown {
		u.unknown++
	}
	return true, true
}

// count is how many records are held.
func (u *unstored) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.recs)
}

func (u *unstored) drop(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.recs[id].unknown {
		u.unknown--
	}
	delete(u.recs, id)
}

// putLater holds an answered ticket's record and puts it in the
// background (unstored) until it is stored or until has passed; false
// when it cannot hold one more (unknown: its ticket's fate is unknown).
func (s *Service) putLater(id string, data []byte, until time.Time, unknown bool) bool {
	fresh, ok := s.unstored.hold(id, data, unknown)
	if fresh {
		go s.putUnstored(id, data, until)
	}
	return ok
}

// putUnstored tries a held record's put (retry) until it is stored or
// until has passed: any refusal is tried again, as the record is all its
// client can read. Once the frontend stops, it makes one last try,
// within a call's bound. A create, not a put, so that a
// record found there (a put that timed out but landed) counts as stored
// at once.
func (s *Service) putUnstored(id string, data []byte, until time.Time) {
	defer s.unstored.drop(id)
	ctx, cancel := context.WithDeadline(context.Background(), until)
	defer cancel()
	err := s.retry(ctx, func(ctx context.Context) error { return s.createRecord(ctx, id, data) })
	if err == nil {
		return
	}
	why := "tried until " + until.UTC().Format(time.RFC3339)
	if ctx.Err() == nil { // the frontend stops: one last try
		why = "the frontend stopped"
		if err = s.createRecord(ctx, id, data); err == nil {
			return
		}
	}
	s.log.Error("record of an answered ticket given up: reads of it answer 404", "ticket_id", id, "why", why, "err", err)
}

// retry calls try after waits of finishBackoff doubling to
// withdrawRetryMax (jittered, as the withdrawals'), until it returns nil,
// ctx ends or the frontend stops; it returns try's last error, or ctx's
// before any try. What an answered ticket's writes left undone is
// finished so (putUnstored, and later's tries).
func (s *Service) retry(ctx context.Context, try func(context.Context) error) error {
	err := ctx.Err()
	for wait := finishBackoff; s.withdrawals.pause(ctx, jittered(wait)); wait = min(2*wait, withdrawRetryMax) {
		if err = try(ctx); err == nil {
			return nil
		}
	}
	if err == nil { // stopped before any try
		err = errors.New("not tried: the frontend stopped")
	}
	return err
}

// createRecord creates a held record within a call's bound; nil once it
// is stored, by this call or an earlier one.
func (s *Service) createRecord(ctx context.Context, id string, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, events.ClaimCallTimeout)
	defer cancel()
	_, err := s.kv.Create(ctx, id, data)
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return err
	}
	s.lateWrites.add(id, s.now())
	s.log.Info("record of an answered ticket stored on a later try", "ticket_id", id)
	return nil
}

// unstoredRecord is the record held for id, if any (Record).
func (s *Service) unstoredRecord(id string) (Record, bool) {
	data, ok := s.unstored.get(id)
	if !ok {
		return Record{}, false
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		s.log.Error("held record unreadable", "ticket_id", id, "err", err)
		return Record{}, false
	}
	return rec, true
}

// maxUnqueued bounds the messages queueLater publishes at once, each a
// goroutine and a ticket's message; maxClaimReads the claims tellLater
// reads, each a goroutine (later).
const (
	maxUnqueued   = maxUnstored / 2
	maxClaimReads = maxUnstored / 2
)

// queueLater publishes again, in the background, the message of a
// ticket answered though its publish was never acked and its fate is
// unknown (finishOrWithdraw), so that one whose publish was lost is
// queued after all, as its 202 says, instead of waiting its whole max
// wait for its expiry. Its message id makes every try the first one's,
// within JetStream's duplicate window (events.DuplicateWindow), which
// bounds the tries (retry) with the ticket's max wait. Past maxUnqueued it is not tried: if it was lost, its
// follower hears its expiry.
func (s *Service) queueLater(rec Record, msg *nats.Msg) {
	id := rec.Ticket.TicketID
	until := rec.Ticket.CreatedAt.Add(min(s.maxWait(rec.Ticket.Mode), events.DuplicateWindow))
	started := s.later(&s.unqueued, maxUnqueued, until, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, events.ClaimCallTimeout)
		defer cancel()
		_, err := s.js.PublishMsg(ctx, msg)
		return err
	}, func(err error) {
		if err == nil {
			s.log.Info("answered ticket's message acked on a later try", "ticket_id", id)
			return
		}
		s.log.Warn("answered ticket's message never acked: if it was lost, its follower hears its expiry", "ticket_id", id, "err", err)
	})
	if !started {
		s.log.Warn("ticket answered with its publish not acked, and not published again: too many are", "ticket_id", id)
	}
}

// later runs try in the background (retry) until it returns nil, until
// passes or the frontend stops, and then done with try's last error;
// running counts those under way, at most bound (false: none started).
// What an answered ticket's writes left undone is finished so
// (queueLater, tellLater).
func (s *Service) later(running *atomic.Int32, bound int32, until time.Time, try func(context.Context) error, done func(error)) bool {
	if running.Add(1) > bound {
		running.Add(-1)
		return false
	}
	go func() {
		defer running.Add(-1)
		ctx, cancel := context.WithDeadline(context.Background(), until)
		defer cancel()
		done(s.retry(ctx, try))
	}()
	return true
}

// tellLater reads, in the background, the claim of a ticket answered
// though its withdrawal's fate was unknown (finishOrWithdraw), once the
// claims bucket answers, and tells its players "cancelled" if the
// withdrawal's claim had landed unanswered: no matcher takes it then, and
// its client, told it was queued, heard nothing until a matcher met the
// claim or its expiry came (chaos S60: 16 tickets, told 6.9-12.9 s after
// their answer). A match's claim, or none read (the withdrawal did not
// land, or lands after the read: a matcher meets it then, as before), is
// left to its owner. Tried until the ticket's max wait or the frontend
// stops (retry), at most maxClaimReads at once.
func (s *Service) tellLater(rec Record) {
	id := rec.Ticket.TicketID
	var cancelled bool // set and read by the one goroutine later runs
	started := s.later(&s.claimReads, maxClaimReads, rec.Ticket.CreatedAt.Add(s.maxWait(rec.Ticket.Mode)), func(ctx context.Context) error {
		rctx, rcancel := context.WithTimeout(ctx, events.ClaimCallTimeout)
		defer rcancel()
		owner, err := s.claims.Owner(rctx, id)
		if err != nil || owner != events.OwnerCancelled {
			return err
		}
		cancelled = true
		ectx, ecancel := context.WithTimeout(ctx, withdrawTimeout)
		defer ecancel()
		// The claim is cancelled, so end finds it its own and tells it
		// unless told already (events.Claims.Tell), as a second
		// withdrawal would.
		_, _, err = s.end(ectx, rec, "", events.OwnerCancelled, withdrawnReason)
		return err
	}, func(err error) {
		switch {
		case err == nil && cancelled:
			s.log.Warn("answered ticket of unknown fate found cancelled (its withdrawal had landed) and told, if nobody had", "ticket_id", id)
		case err == nil || s.withdrawals.isStopping():
			// Nothing to tell, or the frontend stops: a matcher or the
			// ticket's expiry tells it.
		case cancelled:
			s.log.Warn("answered ticket of unknown fate found cancelled but not told; a matcher or its expiry tells it", "ticket_id", id, "err", err)
		default:
			s.log.Warn("answered ticket of unknown fate: its claim not read; a matcher or its expiry tells it", "ticket_id", id, "err", err)
		}
	})
	if !started {
		s.log.Warn("ticket answered with its fate unknown, and its claim not read in the background: too many are; a matcher or its expiry tells it", "ticket_id", id)
	}
}
