package tickets

import (
	"context"
	"errors"
	"fmt"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/natsconn"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
)

// Cancel ends a ticket that has no outcome yet, for a caller that owns it
// (anyone else gets ErrNotFound). Cancelling a cancelled ticket answers as
// the first cancel did; a ticket with another outcome (matched, assigned,
// expired) gives ErrAlreadyDecided and its view.
func (s *Service) Cancel(ctx context.Context, caller identity.Caller, ticketID, reason string) (View, error) {
	rec, err := s.RecordFor(ctx, caller, ticketID)
	if err != nil {
		return View{}, err
	}
	v, _, err := s.end(ctx, rec, Follower(caller), events.OwnerCancelled, reason)
	return v, err
}

// Expire ends a ticket that waited past the frontend's maximum; it is the
// results tracker's Expirer, called on a goroutine of its own with a
// deadline. It tries once: an expiry whose outcome could not be stored
// (issue #19: claimed under a partition, its publish timed out) is tried
// again by the tracker, as long as the ticket has no outcome, and never
// while this one is in flight, so a partition costs no goroutine per try.
// One that NATS did not answer says so (results.RetrySoon) and is tried
// again after a short backoff: a wait later, a ticket no matcher holds
// was told long past its maximum wait. A matcher that meets the claim
// tells the players too, if they were not (the frontend may die
// meanwhile): whichever comes first, the other finds it told
// (events.Claims.Tell). A ticket a match holds is not expired; if the
// match is unsent past events.UnsentGrace, the ticket is published again
// (publishForUnsent).
func (s *Service) Expire(ctx context.Context, ticketID string) results.Retry {
	rec, err := s.Record(ctx, ticketID)
	if errors.Is(err, ErrNotFound) {
		return results.RetryNone // nothing to end (its record aged out)
	}
	var owner string
	if err == nil {
		_, owner, err = s.end(ctx, rec, "", events.OwnerExpired, "no match within the frontend's maximum wait")
	}
	matchID, isMatch := events.OwnerMatchID(owner)
	switch {
	case errors.Is(err, ErrAlreadyDecided) && isMatch:
		s.publishForUnsent(ctx, rec, matchID)
		return results.RetryLater // its match is watched each wait until sent
	case err == nil || errors.Is(err, ErrAlreadyDecided):
		return results.RetryNone
	case natsconn.Unanswered(err):
		s.log.Warn("expire ticket: NATS did not answer; tried again shortly", "ticket_id", ticketID, "err", err)
		return results.RetrySoon
	default:
		s.log.Error("expire ticket; tried again at its next wait", "ticket_id", ticketID, "err", err)
		return results.RetryLater
	}
}

// publishForUnsent publishes rec's ticket again when matchID, the match
// whose claim holds it, is unsent past events.UnsentGrace, so that its
// shard's owner meets the claim and settles the match (recoverMatch:
// sends it, decides it, or undoes a dead matcher's partial claims). Only
// a ticket's message meeting the claim leads a matcher to a match that
// the worker which decided it did not send: it died (its outbox with it)
// or is cut off. With the ticket's message gone from the stream as well
// (chaos seed 31's run a, by a cause not found), its players would wait
// behind the claim for good. The tracker expires a ticket every wait
// until it has an outcome, so this comes again, once per duplicate
// window at most, until the match is sent or undone. It only logs what
// fails: a matches bucket away must not turn every matched ticket's
// expiry into the short retries of one NATS did not answer.
func (s *Service) publishForUnsent(ctx context.Context, rec Record, matchID string) {
	id := rec.Ticket.TicketID
	unsent, err := s.decisions.UnsentPast(ctx, s.claims, matchID, id, s.now())
	if err == nil && unsent {
		err = s.pub.TicketForUnsent(ctx, rec.Shard.Region, rec.Shard.Tier, rec.Ticket, s.stampOf(rec.Ticket), matchID)
		if err == nil {
			s.log.Warn("ticket past its wait held by a match unsent; published again for its shard's owner to settle the match",
				"ticket_id", id, "match_id", matchID)
		}
	}
	if err != nil {
		s.log.Warn("publish a ticket held by an unsent match again; tried at its next wait", "ticket_id", id, "match_id", matchID, "err", err)
	}
}

// end claims a ticket for owner and, if that wins, tells its players (the
// status the claim decides, with reason) and its shard; a ticket another
// owner holds gives ErrAlreadyDecided, once its players were told what
// that owner decided, if it is not a match (events.Claims.Tell: the owner
// may have failed to tell them, or died before it did). It returns the
// claim's owner as it stands: owner if it won, the other otherwise
// (an expiry follows a match's: Expire). The view is as player sees the
// ticket ("": the first player; View): a cancel's caller's own.
func (s *Service) end(ctx context.Context, rec Record, player, owner, reason string) (View, string, error) {
	ticketID := rec.Ticket.TicketID
	won, cur, err := s.claims.Claim(ctx, ticketID, owner)
	if err != nil {
		return View{}, "", err
	}
	if !won {
		if err := s.claims.Tell(ctx, events.Telling{Ticket: rec.live(), Owner: cur}, s.tellSuperseded); err != nil {
			return View{}, cur, err
		}
		v, gerr := s.View(ctx, rec, player)
		if gerr != nil {
			return View{}, cur, gerr
		}
		if v.Status == events.StatusQueued {
			// The claim is decided but the newest result still says queued
			// (the owner's is not out yet, or it is the allocator's requeue
			// and the claim is a later failure): say what the claim says.
			v.Status = events.OwnerStatus(cur)
		}
		return v, cur, fmt.Errorf("%w: %s", ErrAlreadyDecided, v.Status)
	}
	// Told once (events.Claims.Tell): a second try of a cancel or an
	// expiry whose first telling was stored finds it marked.
	if err := s.claims.Tell(ctx, events.Telling{Ticket: rec.live(), Owner: owner, Reason: reason}, s.tellSuperseded); err != nil {
		return View{}, owner, err
	}
	res := events.Result{TicketID: ticketID, Status: events.OwnerStatus(owner), Reason: reason}
	// A hint for matchers to drop it now; the claim already rules it out.
	if err := s.pub.CancelNotice(ctx, rec.Shard.Region, rec.Shard.Tier, ticketID, rec.Ticket.Mode); err != nil {
		s.noticeNotSent(err, "ticket_id", ticketID)
	}
	return ViewOf(rec, &res), owner, nil
}

// noticeNotSent logs a cancel notice that could not be sent, for a ticket
// this frontend ended (a cancel, an expiry, a superseded ticket). It is
// only a warning: the claim won before the notice keeps the ticket out of
// every match, and matchers find it when they try to claim it.
func (s *Service) noticeNotSent(err error, attrs ...any) {
	s.log.Warn("cancel notice not sent; matchers will find the claim", append(attrs, "err", err)...)
}
