package tickets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// storeAndQueue stores a new ticket's record and queues the ticket, the
// two writes pipelined: the ticket's message is sent (not awaited), the
// record is written, and then the ticket's ack is awaited. So a creation
// costs one round trip for both, not two, and the client and the server
// write and read them in fewer system calls. It returns nil only when
// both are stored: a 202 still means the ticket is stored and queued.
//
// What the order gave up: the ticket may be queued while its record
// fails (a tickets-bucket leader change, a deadline). Its client hears an
// error and, without an Idempotency-Key, never asks for this ticket again,
// so a matcher would put it in a match nobody follows (a no-show in
// someone's room). So the put, which is idempotent, is tried again
// (store); a ticket that may be queued has what is left of its writes
// tried again for a few seconds more (finish), and is withdrawn before
// the error is answered if they fail: an error means no ticket that can
// be matched.
// A withdrawal that finds the ticket in a match already cannot undo it:
// the ticket is answered instead, its record put once more if need be,
// and in the background (putLater) if that fails too.
//
// The ticket is encoded once: the record carries the message's bytes.
// live: the ticket's take first made it its players' live ticket, and
// its message is sealed so.
func (s *Service) storeAndQueue(ctx context.Context, rec Record, rulesVersion string, live bool) error {
	id := rec.Ticket.TicketID
	msg, data, err := encode(ctx, s.subj, rec, rulesVersion)
	if err != nil {
		return err
	}
	if live {
		s.seal(msg)
	}
	// The two writes share one deadline, a call's: the ticket's ack is
	// awaited no longer than the record's put may take. A request's ctx
	// has none, and a lost ack (a cut) was awaited until the async
	// publish timeout, 30 s, the creation holding its admission slot.
	wctx, cancel := context.WithTimeout(ctx, events.ClaimCallTimeout)
	defer cancel()
	fut, err := s.js.PublishMsgAsync(msg)
	if err != nil {
		return fmt.Errorf("queue ticket %s: publish %s: %w", id, msg.Subject, err)
	}
	storeErr := s.store(wctx, id, data)
	queueErr := awaitAck(wctx, fut)
	switch {
	case storeErr != nil:
		err = fmt.Errorf("store ticket %s: %w", id, storeErr)
	case queueErr != nil:
		err = fmt.Errorf("queue ticket %s: publish %s: %w", id, msg.Subject, queueErr)
	default:
		return nil
	}
	if !mayBeQueued(queueErr) {
		return err
	}
	if err := s.finishOrWithdraw(ctx, rec, msg, data, storeErr == nil, queueErr == nil, err); err != nil {
		return err
	}
	// A replica of the bucket may not have the record yet: a read of it
	// that finds nothing asks the leader for a while (Record).
	s.lateWrites.add(id, s.now())
	return nil
}

// finishOrWithdraw tries again what is left of a ticket's writes that failed
// with cause while it may be queued (finish), and withdraws it if they
// fail. nil: the ticket is created after all, its writes late.
func (s *Service) finishOrWithdraw(ctx context.Context, rec Record, msg *nats.Msg, data []byte, stored, queued bool, cause error) error {
	id := rec.Ticket.TicketID
	stored, queued = s.finish(ctx, id, msg, data, stored, queued)
	if stored && queued {
		s.log.Info("ticket created on a later try of its writes", "ticket_id", id, "cause", cause)
		return nil
	}
	if _, inMatch := s.withdraw(ctx, rec, cause); !inMatch {
		return cause
	}
	// Queued after all, and a matcher put it in a match before the
	// withdrawal: an error now would make it a no-show. With its record
	// stored, it is created (nil: Create answers it).
	if stored {
		return nil
	}
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), events.ClaimCallTimeout)
	defer pcancel()
	_, perr := s.kv.Put(pctx, id, data)
	switch {
	case perr == nil:
	case s.putLater(id, data):
		s.log.Warn("ticket in a match but its record not stored yet: answered, its record put again in the background",
			"ticket_id", id, "cause", cause, "err", perr)
	default:
		s.log.Error("ticket in a match but its record not stored; its client is told an error: a no-show",
			"ticket_id", id, "cause", cause, "err", perr)
		return cause
	}
	return nil
}

// awaitAck is fut's answer: nil once the ticket is stored, ctx's error
// when none came in time (maybe queued all the same, as a PublishMsg
// that timed out). An answer already come counts even once ctx is done
// (a put that took the whole deadline): select picks at random.
func awaitAck(ctx context.Context, fut jetstream.PubAckFuture) error {
	select {
	case <-fut.Ok():
		return nil
	case err := <-fut.Err():
		return err
	case <-ctx.Done():
	}
	select {
	case <-fut.Ok():
		return nil
	case err := <-fut.Err():
		return err
	default:
		return ctx.Err()
	}
}

// finishWithin bounds finish: past it, the creation withdraws its ticket
// and answers an error. A few calls' bounds: a cut of a few seconds
// (a NATS server's link, a leader's election) heals within it. With the
// writes' own bound before and the withdrawal after, a creation ends
// within 12 s (14 s when its withdrawal finds it in a match and its
// record is put once more: finishOrWithdraw): inside the frontend's
// shutdown grace once Stop has ended its finish.
const finishWithin = 3 * events.ClaimCallTimeout

// finishBackoff is finish's first wait; each next one doubles it.
const finishBackoff = 250 * time.Millisecond

// finish tries again, until finishWithin passed, the request ended or
// the frontend stops (Stop), what a creation's pipelined writes left
// undone while its ticket may be queued (stored, queued: what is done
// already): the record's put (idempotent), and the ticket's publish
// unless acked, which its message id makes the first one's (JetStream's
// duplicate window answers a second publish of a stored ticket with its
// ack). The publish is awaited (PublishMsg), not left in the client's
// table of async acks, which a cut would fill with the tries of every
// creation. A refusal that will not pass (refused, not refusedNow: a
// full bucket, a permission) ends it. It returns what is done then: both,
// and the ticket is created.
//
// Withdrawn instead, a ticket queued and live was often put in a match
// first, its client told an error: a no-show in its partners' game
// (chaos S49: 136 such tickets in five minutes, most of them with their
// publish acked and their record's put cut off or refused).
func (s *Service) finish(ctx context.Context, id string, msg *nats.Msg, data []byte, stored, queued bool) (bool, bool) {
	ctx, cancel := context.WithTimeout(ctx, finishWithin)
	defer cancel()
	for wait := finishBackoff; !stored || !queued; wait = min(2*wait, events.ClaimCallTimeout) {
		if !s.withdrawals.pause(ctx, wait) {
			return stored, queued
		}
		var queueErr, storeErr error
		var wg sync.WaitGroup
		if !queued {
			wg.Go(func() {
				qctx, qcancel := context.WithTimeout(ctx, events.ClaimCallTimeout)
				defer qcancel()
				_, queueErr = s.js.PublishMsg(qctx, msg)
			})
		}
		if !stored {
			storeErr = s.store(ctx, id, data)
		}
		wg.Wait()
		stored, queued = stored || storeErr == nil, queued || queueErr == nil
		if lasting(storeErr) || lasting(queueErr) {
			return stored, queued
		}
	}
	return stored, queued
}

// lasting reports a refusal that trying again within seconds will not
// change: refused, but not "not now" (refusedNow).
func lasting(err error) bool { return err != nil && refused(err) && !refusedNow(err) }

// putBackoff is how long store waits before each try of a record's put.
// Only refusals for now are tried again (refusedNow): a tickets-bucket
// leader change is over within a few hundred milliseconds.
var putBackoff = [...]time.Duration{0, 50 * time.Millisecond, 200 * time.Millisecond}

// store puts a ticket's record (a put of the same value under the same
// key is idempotent), trying again after a refusal for now. All tries share
// one deadline, events.ClaimCallTimeout: a put that timed out is not
// tried again, so a partitioned bucket costs a creation (and its
// admission slot) one call's bound, not one per try.
func (s *Service) store(ctx context.Context, id string, data []byte) (err error) {
	ctx, cancel := context.WithTimeout(ctx, events.ClaimCallTimeout)
	defer cancel()
	for _, wait := range putBackoff {
		if wait > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(wait):
			}
		}
		if _, err = s.kv.Put(ctx, id, data); err == nil || !refusedNow(err) {
			return err
		}
	}
	return err
}

// refusedNow reports a refusal (refused) that says "not now": any but
// an API error other than JetStream's 503 (no leader yet). A timeout is
// not one: it already cost a whole call.
func refusedNow(err error) bool {
	var api *jetstream.APIError
	return refused(err) && (!errors.As(err, &api) || api.Code == http.StatusServiceUnavailable)
}

// mayBeQueued reports whether a ticket whose publish ended in queueErr
// may be in the stream: acked, or not answered (a timeout, a lost
// connection), as opposed to refused.
func mayBeQueued(queueErr error) bool { return queueErr == nil || !refused(queueErr) }

// refused reports an error that came back at once and says the write did
// not happen: the stream's or bucket's own refusal (an API error) or no
// stream at all to answer.
func refused(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) || errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}

// withdrawTimeout bounds withdraw's claim, telling and notice, which run
// after the creation's own context may have ended (the deadline that
// failed it, a client that hung up).
const withdrawTimeout = 2 * events.ClaimCallTimeout

// withdrawTries is how long a withdrawal whose claim was refused for now
// (refusedNow: the claims bucket without a leader) is tried again before
// its creation answers: its bound less a call's, which is kept for the
// read of the claim that follows (withdrawFailed), or for the telling of
// a claim won as the tries end. A leader that steps down is replaced
// within a second or two (chaos S56: the matchers claimed the tickets
// 0.5-1.1 s after the refusal); a lost one (up to
// events.NATSElectionTimeout) is left to withdrawLater.
const withdrawTries = withdrawTimeout - events.ClaimCallTimeout

// withdrawBackoff is the first wait between those tries, each next one
// twice the last up to withdrawBackoffMax, give or take a quarter
// (withdrawLater's are withdrawRetryFirst and withdrawRetryMax).
const (
	withdrawBackoff    = 50 * time.Millisecond
	withdrawBackoffMax = 400 * time.Millisecond
)

// withdraw takes off a ticket that may be queued while its creation
// answers cause: it is claimed cancelled, its players are told and its
// shard is sent a cancel notice (end, as a DELETE does), so no matcher
// puts it in a match. inMatch reports that it came too late: a matcher
// claimed the ticket first (v says matched or assigned), so the creation
// must not answer an error (its client would never follow a ticket that
// is in a match). A claim refused for now is tried again for up to
// withdrawTries first; a withdrawal that still fails (NATS away) is
// logged, and left to withdrawLater.
func (s *Service) withdraw(ctx context.Context, rec Record, cause error) (v View, inMatch bool) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), withdrawTimeout)
	defer cancel()
	// Tried again before the answer, not left to withdrawLater's first
	// try a second later: the matchers wait for the same bucket, and as
	// it came back they claimed the ticket for a match while its client
	// had been told an error (chaos S56: 13 no-shows). Coming back, the
	// withdrawal wins, or finds the match and the creation answers it.
	tctx, tcancel := context.WithTimeout(wctx, withdrawTries)
	defer tcancel()
	id := rec.Ticket.TicketID
	v, cur, err := s.end(tctx, rec, "", events.OwnerCancelled, withdrawnReason)
	// cur == "": only the claim was refused; a claim won and not told is
	// not claimed again here.
	for wait := withdrawBackoff; err != nil && cur == "" && refusedNow(err); wait = min(2*wait, withdrawBackoffMax) {
		if !s.withdrawals.pause(tctx, jittered(wait)) {
			break
		}
		v, cur, err = s.end(tctx, rec, "", events.OwnerCancelled, withdrawnReason)
	}
	if err != nil && cur == events.OwnerCancelled && tctx.Err() != nil {
		// Won as the tries' time ran out, the telling maybe cut short: a
		// second end finds the claim its own and tells, once (Claims.Tell).
		v, cur, err = s.end(wctx, rec, "", events.OwnerCancelled, withdrawnReason)
	}
	switch {
	case err == nil:
		s.log.Warn("ticket withdrawn: its creation failed", "ticket_id", id, "cause", cause)
	case errors.Is(err, ErrAlreadyDecided) && (v.Status == events.StatusMatched || v.Status == events.StatusAssigned):
		s.log.Warn("ticket not withdrawn: a matcher put it in a match first; its creation answers it",
			"ticket_id", id, "cause", cause, "status", v.Status)
		return v, true
	case errors.Is(err, ErrAlreadyDecided):
		s.log.Warn("ticket not withdrawn: already decided, in no match", "ticket_id", id, "cause", cause, "err", err)
	default:
		if owner := s.withdrawFailed(wctx, rec, cause, err, cur); isMatch(owner) {
			claimed := events.ClaimedResult(id, "", owner)
			return ViewOf(rec, &claimed), true
		}
	}
	return View{}, false
}

// isMatch says whether owner is a match's claim.
func isMatch(owner string) bool {
	_, ok := events.OwnerMatchID(owner)
	return ok
}

// withdrawFailed logs a withdrawal that returned err, and returns the
// ticket's claim: cur, the one the withdrawal's claim lost to, or, when
// it did not get that far, the one read now. A claim that won before the
// telling or its publish failed keeps the ticket out of every match all
// the same. A match's claim means the withdrawal came too late: the
// ticket is in a match, and its creation must answer it, though reading
// its status failed (the claims bucket without a leader, RESULTS cut
// off), or the client is told an error for a ticket a game waits for (a
// no-show; review R3). Only a ticket claimed by no one is left matchable,
// and is tried again in the background (withdrawLater).
func (s *Service) withdrawFailed(ctx context.Context, rec Record, cause, err error, cur string) string {
	id := rec.Ticket.TicketID
	if cur == "" {
		cur, _ = s.claims.Owner(ctx, id)
	}
	switch {
	case cur == events.OwnerCancelled:
		s.log.Warn("ticket withdrawn (claimed cancelled) but its players may not be told",
			"ticket_id", id, "cause", cause, "err", err)
	case isMatch(cur):
		s.log.Warn("ticket not withdrawn: a matcher put it in a match first; its creation answers it",
			"ticket_id", id, "cause", cause, "owner", cur, "err", err)
	default:
		s.log.Error("ticket not withdrawn after its creation failed; tried again in the background, until then it may be matched with nobody following it",
			"ticket_id", id, "cause", cause, "err", err)
		s.withdrawLater(rec)
	}
	return cur
}

// encode returns the message that queues rec's ticket and rec as the
// tickets bucket stores it, the ticket encoded once for both.
func encode(ctx context.Context, subj events.Subjects, rec Record, rulesVersion string) (*nats.Msg, []byte, error) {
	msg, err := events.TicketMsg(ctx, subj, rec.Shard.Region, rec.Shard.Tier, rec.Ticket, rulesVersion)
	if err != nil {
		return nil, nil, err
	}
	data, err := json.Marshal(encodedRecord{Ticket: msg.Data, Region: rec.Shard.Region, Tier: rec.Shard.Tier, RequestHash: rec.RequestHash})
	if err != nil {
		return nil, nil, fmt.Errorf("encode ticket record: %w", err)
	}
	return msg, data, nil
}

// seal marks msg, the message of a ticket taken first, as such for its
// shard's owner (events.HeaderTaken), if the frontend has seal keys. Only
// after the take: the seal says its players' entries name the ticket.
func (s *Service) seal(msg *nats.Msg) {
	if s.cfg.Seals != nil {
		msg.Header.Set(events.HeaderTaken, s.cfg.Seals.Seal(msg.Subject, msg.Data))
	}
}

// encodedRecord is storedRecord with its ticket encoded already (the
// queued message's bytes): the same JSON (TestEncodedRecordIsTheStoredShape).
type encodedRecord struct {
	Ticket      json.RawMessage `json:"ticket"`
	Region      string          `json:"region"`
	Tier        string          `json:"tier"`
	RequestHash string          `json:"request_hash"`
}
