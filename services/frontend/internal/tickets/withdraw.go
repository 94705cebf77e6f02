package tickets

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// withdrawnReason is what the players of a ticket withdrawn are told.
const withdrawnReason = "withdrawn: the frontend could not finish creating it"

// Later tries of a withdrawal that failed: the first after
// withdrawRetryFirst, each wait twice the last, up to withdrawRetryMax;
// at most maxWithdrawing tickets at once, each a timer.
const (
	withdrawRetryFirst = time.Second
	withdrawRetryMax   = 8 * time.Second
	maxWithdrawing     = 10000
)

// withdrawLater tries again, in the background, to withdraw a ticket
// whose creation failed and whose withdrawal failed too (the claims
// bucket without a leader), until it is withdrawn or decided otherwise,
// or its mode's max_wait passed (its matcher expires it then). Left
// queued, it was matched with nobody following it: its partners sent to a
// game it never joins (chaos S48 logged 77 such tickets in a 39 s claims
// outage). A client that asks again meanwhile supersedes it (its players'
// entry names it), and the next try finds it decided.
func (s *Service) withdrawLater(rec Record) {
	id := rec.Ticket.TicketID
	if s.withdrawing.Add(1) > maxWithdrawing {
		s.withdrawing.Add(-1)
		s.log.Error("too many withdrawals tried again at once; ticket left queued", "ticket_id", id, "pending", maxWithdrawing)
		return
	}
	until := rec.Ticket.CreatedAt.Add(s.maxWait(rec.Ticket.Mode))
	delay := withdrawRetryFirst
	var try func()
	try = func() {
		ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
		defer cancel()
		v, _, err := s.end(ctx, rec, "", events.OwnerCancelled, withdrawnReason)
		next := min(2*delay, withdrawRetryMax)
		switch {
		case err == nil:
			s.log.Warn("ticket withdrawn on a later try: its creation had failed", "ticket_id", id)
		case errors.Is(err, ErrAlreadyDecided) && (v.Status == events.StatusMatched || v.Status == events.StatusAssigned):
			s.log.Error("ticket put in a match before its withdrawal went through: its creation had failed, and its player may never come",
				"ticket_id", id, "status", v.Status)
		case errors.Is(err, ErrAlreadyDecided):
			s.log.Info("ticket decided before its withdrawal went through", "ticket_id", id, "err", err)
		case s.now().Add(next).After(until):
			s.log.Error("ticket not withdrawn within its max wait; it may be matched with nobody following it", "ticket_id", id, "err", err)
		default:
			delay = next
			time.AfterFunc(jittered(delay), try)
			return
		}
		s.withdrawing.Add(-1)
	}
	time.AfterFunc(jittered(delay), try)
}

// jittered is d give or take a quarter: the withdrawals an outage left
// do not all come back to the claims bucket at the same instant as it
// recovers.
func jittered(d time.Duration) time.Duration {
	return d - d/4 + rand.N(d/2+1)
}

// maxWait is mode's max_wait in the rule set in force, or
// events.TicketMaxAge for a mode it no longer has.
func (s *Service) maxWait(mode string) time.Duration {
	if m, ok := s.cfg.Rules.Get().Mode(mode); ok {
		return time.Duration(m.MaxWait)
	}
	return events.TicketMaxAge
}
