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
// write and read them in fewer system calls. It returns nil when both
// are stored, or when a withdrawal cannot take the ticket back (below).
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
// A withdrawal that finds the ticket in a match already cannot undo it,
// and one whose claim fails with none read cannot know (fateUnknown): the
// ticket is answered instead, its record put once more if need be and in
// the background (putLater) if that fails too, its message published
// again in the background until acked (queueLater), and its claim read
// once the claims bucket answers, to tell it cancelled if the withdrawal
// landed after all (tellLater).
//
// The ticket is encoded once: the record carries the message's bytes.
// taken: the ticket was taken first (takeFirst), made its players' live
// ticket or ended by an older one of theirs; else it is taken after
// (queueThenTake). live: the take made it live, and its message is
// sealed so. unknown: the ticket is answered with its fate unknown
// (finishOrWithdraw); one not taken first was found its player's live
// ticket then (takenElsewhere), and is not taken again.
func (s *Service) storeAndQueue(ctx context.Context, rec Record, rulesVersion string, taken, live bool) (unknown bool, err error) {
	id := rec.Ticket.TicketID
	msg, data, err := encode(ctx, s.subj, rec, rulesVersion)
	if err != nil {
		return false, err
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
		return false, fmt.Errorf("queue ticket %s: publish %s: %w", id, msg.Subject, err)
	}
	storeErr := s.store(wctx, id, data)
	queueErr := awaitAck(wctx, fut)
	switch {
	case storeErr != nil:
		err = fmt.Errorf("store ticket %s: %w", id, storeErr)
	case queueErr != nil:
		err = fmt.Errorf("queue ticket %s: publish %s: %w", id, msg.Subject, queueErr)
	default:
		return false, nil
	}
	if !mayBeQueued(queueErr) {
		return false, err
	}
	unknown, err = s.finishOrWithdraw(ctx, rec, msg, data, writes{stored: storeErr == nil, queued: queueErr == nil, taken: taken}, err)
	if err != nil {
		return false, err
	}
	// A replica of the bucket may not have the record yet: a read of it
	// that finds nothing asks the leader for a while (Record).
	s.lateWrites.add(id, s.now())
	return unknown, nil
}

// writes are what a creation's writes did: its record stored, its
// ticket queued (acked), and its take done (storeAndQueue's taken).
type writes struct{ stored, queued, taken bool }

// finishOrWithdraw tries again what is left of a ticket's writes that
// failed with cause while it may be queued (finish), and withdraws it if
// they fail. nil: the ticket is answered after all, its writes late, or
// in a match, or of unknown fate (unknown) and taken, or a replacement
// found its player's live ticket (takenElsewhere), its record stored or held
// (storeOnceMore), its message published again until acked (queueLater)
// and its claim read to tell a withdrawal that landed (tellLater).
func (s *Service) finishOrWithdraw(ctx context.Context, rec Record, msg *nats.Msg, data []byte, done writes, cause error) (unknown bool, err error) {
	id := rec.Ticket.TicketID
	done.stored, done.queued = s.finish(ctx, id, msg, data, done.stored, done.queued)
	if done.stored && done.queued {
		s.log.Info("ticket created on a later try of its writes", "ticket_id", id, "cause", cause)
		return false, nil
	}
	_, fate := s.withdraw(ctx, rec, cause)
	switch {
	case fate == fateWithdrawn:
		return false, cause
	case fate == fateUnknown && !done.taken && !s.takenElsewhere(ctx, rec):
		// Answered, a replacement would say its player's waiting ticket
		// is superseded while that one may still be matched.
		s.withdrawLater(rec)
		return false, cause
	}
	// Queued after all, and a matcher put it in a match before the
	// withdrawal, or may yet: an error now would make it a no-show.
	if !done.stored && !s.storeOnceMore(ctx, rec, data, fate, cause) {
		if fate == fateUnknown {
			s.withdrawLater(rec)
		}
		return false, cause
	}
	if fate == fateUnknown {
		if !done.queued {
			s.queueLater(rec, msg)
		}
		s.answeredUnknown(rec)
	}
	return fate == fateUnknown, nil
}

// answeredUnknown leaves a ticket of unknown fate that its creation
// answers to its follower: its claim is read once the claims bucket
// answers, to tell the withdrawal if it landed after all (tellLater).
func (s *Service) answeredUnknown(rec Record) {
	s.tellLater(rec)
	s.withdrawals.ended.WithLabelValues(answeredUnknown).Inc()
}

// storeOnceMore puts an answered ticket's record once more, and holds it
// to be put in the background (putLater) if that fails too; false when it
// can do neither: its client is told an error.
func (s *Service) storeOnceMore(ctx context.Context, rec Record, data []byte, fate fate, cause error) bool {
	id := rec.Ticket.TicketID
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), events.ClaimCallTimeout)
	defer pcancel()
	_, perr := s.kv.Put(pctx, id, data)
	if perr == nil {
		return true
	}
	// Held until its outcome may come: at once for a match; a ticket of
	// unknown fate's may be its expiry, which reads the record, a max
	// wait on.
	until := s.now().Add(unstoredFor)
	if expiry := rec.Ticket.CreatedAt.Add(s.maxWait(rec.Ticket.Mode) + unstoredFor); fate == fateUnknown && expiry.After(until) {
		until = expiry
	}
	switch {
	case s.putLater(id, data, until, fate == fateUnknown):
		s.log.Warn("ticket answered but its record not stored yet: its record put again in the background",
			"ticket_id", id, "cause", cause, "err", perr)
		return true
	case fate == fateUnknown:
		s.log.Error("ticket not withdrawn and its record neither stored nor held; its client is told an error, and its withdrawal tried again in the background",
			"ticket_id", id, "cause", cause, "err", perr)
	default:
		s.log.Error("ticket in a match but its record not stored; its client is told an error: a no-show",
			"ticket_id", id, "cause", cause, "err", perr)
	}
	return false
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
// record is put once more: finishOrWithdraw; a replacement's take tried
// again, takeTries, and the tracker asked, heardWait, add up to 3 s, and
// a replacement heard taken in elsewhere, its player's entry read twice
// at most, takenElsewhere, up to 4 s more):
// inside the frontend's shutdown grace once Stop has ended its finish
// and its tries.
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
// an API error other than JetStream's 503 (no leader yet) or its
// "duplicate message id is in process" (another publish of the very
// same message, whose answer a try a moment later gets: a take's
// telling of the ticket it supersedes raced its matcher's, chaos S64).
// A timeout is not one: it already cost a whole call.
func refusedNow(err error) bool {
	var api *jetstream.APIError
	return refused(err) && (!errors.As(err, &api) || api.Code == http.StatusServiceUnavailable || api.ErrorCode == duplicateInProcess)
}

// duplicateInProcess is JetStream's error code for a publish whose
// message id another publish stored but has not answered yet
// (nats-server's JSStreamDuplicateMessageConflict; jetstream names no
// constant for it).
const duplicateInProcess jetstream.ErrorCode = 10158

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
