package tickets

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
)

// createKeyed creates a ticket its caller named (an Idempotency-Key, which
// every browser sends, or a server's chosen id) that may be a repeat. The
// record is created only if the key has none (kv.Create): so the first
// attempt reads nothing before it writes (one JetStream read less per
// creation than a look-up first), and an attempt that finds the record
// is a repeat, answered from it (repeat). The record is stored before
// the ticket is published and tracked, not beside them: a repeat's
// request may differ (refused, ErrIdempotencyReuse), and its ticket must
// never have been queued under the first attempt's id; and only the
// attempt that created the record untracks the ticket when it fails, so a
// repeat cannot untrack it under a first attempt still running. (A repeat
// that tracked it beside a first attempt that then fails loses that
// tracking; the ticket's event stream tracks it again when opened.)
//
// Like Create's, the ticket is taken before it is queued unless that
// could end a ticket of its players still waiting or in a match not
// decided published (TakeFirst; then it is queued first and taken
// after). So a ticket the first attempt made live may not be queued yet,
// and its repeat queues it even into a shard drained since
// (drainedUntaken: it was admitted before the drain).
func (s *Service) createKeyed(ctx context.Context, rec Record, rulesVersion string) (View, error) {
	t := rec.Ticket
	msg, data, err := encode(ctx, s.subj, rec, rulesVersion)
	if err != nil {
		return View{}, err
	}
	if _, err := s.kv.Create(ctx, t.TicketID, data); errors.Is(err, jetstream.ErrKeyExists) {
		v, found, err := s.repeat(ctx, rec)
		if err == nil && !found {
			// Stored and gone before the read (its TTL ended between):
			// unavailable, and a retry creates it anew.
			err = fmt.Errorf("ticket %s: record gone while read", t.TicketID)
		}
		return v, err
	} else if err != nil {
		return View{}, fmt.Errorf("store ticket %s: %w", t.TicketID, err)
	}
	if err := s.tracker.Track(ctx, &t, &results.Creation{Shard: rec.Shard, Mode: t.Mode, Players: t.Players()}); err != nil {
		return View{}, err
	}
	first, live, err := s.takeFirst(ctx, rec, s.players.TakeFirst) // a chosen or derived id may have been a ticket's before
	if err != nil {
		return View{}, err
	}
	if live {
		s.seal(msg)
	}
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		s.tracker.Untrack(context.WithoutCancel(ctx), t.TicketID)
		return View{}, fmt.Errorf("queue ticket %s: publish %s: %w", t.TicketID, msg.Subject, err)
	}
	if !first {
		if err := s.take(ctx, rec); err != nil {
			return View{}, err
		}
	}
	return ViewOf(rec, nil), nil
}

// AnswerRepeat answers, from the ticket its earlier attempt made, a keyed
// creation the frontend serves past its limit because its client says
// it repeats one (the API's repeat slots, ticketapi.HeaderRepeat), as
// Create answers a repeat: a ticket still waiting is published again
// and taken (republish), another request under the key is
// ErrIdempotencyReuse. It creates no ticket: when no attempt made one
// (or the request names none: no key, no chosen id) it is ErrNotFound,
// and the API refuses it for overload, unless its shard takes no new
// ticket now (drained, or a full region), which is said instead, as
// Create says it.
func (s *Service) AnswerRepeat(ctx context.Context, caller identity.Caller, req Request, idempotencyKey string) (View, error) {
	rec, _, err := s.newRecord(caller, req, idempotencyKey)
	if err != nil {
		return View{}, err
	}
	if rec.RequestHash == "" {
		return View{}, ErrNotFound
	}
	v, found, err := s.repeat(ctx, rec)
	if err == nil && !found {
		if err = s.admit(rec.Shard); err == nil {
			err = ErrNotFound
		}
	}
	return v, err
}

// newRecord is the record of the ticket req asks for, with the rule set
// it was checked against (one set for the check and the stamp). Only a
// ticket named by its caller (a key, or a chosen id) can be repeated, so
// only its record keeps the request's hash, which a repeat compares: a
// random id is never asked for again.
func (s *Service) newRecord(caller identity.Caller, req Request, idempotencyKey string) (Record, *rules.Set, error) {
	if err := Authorize(caller, &req); err != nil {
		return Record{}, nil, err
	}
	set := s.cfg.Rules.Get()
	t, shard, err := s.build(set, req)
	if err != nil {
		return Record{}, nil, err
	}
	var hash string
	if idempotencyKey != "" || req.TicketID != "" {
		hash = requestHash(req)
	}
	switch {
	case t.TicketID != "":
	case idempotencyKey != "":
		t.TicketID = "i" + hashHex(caller.Key()+"\x00"+idempotencyKey)
	default:
		t.TicketID = newTicketID()
	}
	return Record{Ticket: t, Shard: shard, RequestHash: hash}, set, nil
}

// repeat answers a repeated creation from the record its first attempt
// stored: found is false when there is none. A repeat of another request
// under the same key is refused; one of the same request gets its ticket
// queued (republish) and its view.
func (s *Service) repeat(ctx context.Context, rec Record) (v View, found bool, err error) {
	old, err := s.Record(ctx, rec.Ticket.TicketID)
	if errors.Is(err, ErrNotFound) {
		return View{}, false, nil
	}
	if err != nil {
		return View{}, false, err
	}
	if old.RequestHash != rec.RequestHash {
		return View{}, true, ErrIdempotencyReuse
	}
	owner, err := s.republish(ctx, old)
	if err != nil {
		return View{}, true, err
	}
	if owner != "" {
		// Its players may never have been told what its claim decided:
		// an expiry that won the claim and whose telling timed out,
		// while the creation that followed the ticket failed (chaos
		// S80b), leaves nobody to tell them, for the ticket was never
		// queued for a matcher to meet. Told once (events.Claims.Tell);
		// a match's results are its matcher's. Told with the outcome's
		// own words: a claimer that has not told yet (a withdrawal, a
		// dead letter) and had a reason of its own is told in these,
		// as when end meets another owner's claim.
		if err := s.claims.Tell(ctx, events.Telling{Ticket: old.live(), Owner: owner}, s.tellSuperseded); err != nil {
			s.log.Warn("repeated creation: tell the players what the ticket's claim decided; told later by its stream's expiry or a repeat",
				"ticket_id", old.Ticket.TicketID, "owner", owner, "err", err)
		}
	}
	v, err = s.View(ctx, old, "") // a player token queues only its own player (Authorize)
	if err != nil {
		// Its ticket is queued, or its claim has an owner; only the
		// read of its results failed (RESULTS cut off). Answered as
		// the claim says (queued with none, as a first creation is):
		// its client follows it and hears the rest there. An error
		// sent away a client whose last retry had queued the ticket,
		// matched 8 s later (chaos S77: a no-show).
		s.log.Warn("repeated creation answered from its claim", "ticket_id", old.Ticket.TicketID, "owner", owner, "err", err)
		if owner == "" {
			return ViewOf(old, nil), true, nil
		}
		claimed := events.ClaimedResult(old.Ticket.TicketID, old.Ticket.Players()[0], owner)
		return ViewOf(old, &claimed), true, nil
	}
	return v, true, nil
}

// admit refuses a new ticket for a shard that takes none now: drained
// (told first: the operator's reason), or a region without free rooms.
func (s *Service) admit(shard events.Shard) error {
	if s.cfg.Drains != nil {
		if err := s.cfg.Drains.CheckShard(shard); err != nil {
			return err
		}
	}
	return s.capacity.Check(shard.Region)
}
