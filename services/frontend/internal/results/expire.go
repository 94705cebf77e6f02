package results

import (
	"context"
	"math/rand/v2"
	"time"
)

// Expirer ends a ticket that waited too long (the frontend claims it as
// expired and tells its players). It is called from its own goroutine,
// with a deadline (expireTimeout), and tries once, and says when it is
// owed another try (Retry): soon, after a short backoff (retryFirst,
// doubling up to retryMax), when NATS did not answer; else one wait
// later if the ticket still has no outcome. Never while a call for the
// ticket is in flight.
type Expirer func(ctx context.Context, ticketID string) Retry

// Retry is what an expiry leaves owed.
type Retry int

const (
	// RetryNone: the expiry ended (told, lost to another owner that is
	// told, or nothing to end). A tracked ticket is expired again a wait
	// later if it has no outcome by then; one untracked is let go.
	RetryNone Retry = iota
	// RetrySoon: NATS did not answer; tried again after a backoff.
	RetrySoon
	// RetryLater: something is left to do a wait later (an error NATS
	// answered, a match unsent to watch): a ticket untracked is kept for
	// it.
	RetryLater
)

// expireTimeout bounds one expiry: a record read, a claim, a telling and
// a view, each a round trip or two, each bounded (events.ClaimCallTimeout)
// or under the client's default 5 s. An expiry cut off from NATS ends by
// then and is tried again after a backoff; unbounded, each
// waiting ticket would hold a goroutine on NATS until the heal.
const expireTimeout = 30 * time.Second

// Backoff of an expiry cut off from NATS: short, so a ticket no matcher
// holds is told soon after a partition heals (a wait later, it missed
// max wait + 60 s in a chaos run), capped, so a long partition costs a
// call per ticket every few seconds, not a tight loop.
const (
	retryFirst = time.Second
	retryMax   = 10 * time.Second
)

// expiry is an expiry of tk that returned, with what it left owed.
type expiry struct {
	tk    *ticket
	retry Retry
}

// endedKept is how long, at least, a ticket whose every player's
// outcome came before any wait on it is kept (up to a tick more): the
// client's stream, opened once its 202 is in, is then answered from
// memory (wait). A few seconds cover a client on a slow link past
// capacity; at 10,000 tickets a second that is 50,000-60,000 tickets
// held. A stream that had opened and dropped before the outcome (a wait
// had the ticket) reads the stored state when it comes back, as before.
const endedKept = 5 * time.Second

// expireDue starts the expiry of each ticket that waited its mode's wait
// since it was created or last expired, or whose retry after an expiry
// cut off from NATS is due, unless one is in flight. A ticket whose
// outcome came (ended) waits only for its other players' results
// (members.go), and is forgotten memberStraggle after its outcome, or
// endedKept after it when no wait is on it and every player's is in.
func (t *Tracker) expireDue(ctx context.Context, s *state, now time.Time) {
	for _, tk := range s.tickets {
		if !tk.ended.IsZero() {
			if kept := now.Sub(tk.ended); kept >= memberStraggle || kept >= endedKept && len(tk.waiters) == 0 && tk.allIn() {
				t.forget(s, tk)
			}
			continue
		}
		// The mode's wait is read each tick: a reload of the rule set
		// moves the expiry of waiting tickets, as it does in the
		// matchers.
		wait := t.waits(tk.mode)
		if tk.expiring ||
			!tk.retryAt.IsZero() && now.Before(tk.retryAt) ||
			tk.retryAt.IsZero() && now.Sub(tk.since) < wait {
			continue
		}
		tk.expiring, tk.retryAt = true, time.Time{}
		// The next try comes a wait later (an expiry that lost to an
		// outcome, a matched ticket awaiting its server, is not tried
		// every tick), give or take a jitter: expiries that failed
		// together do not all come back at once. One cut off from NATS
		// comes sooner (expiryReturned).
		tk.since = now
		if j := int64(wait / 4); j > 0 {
			tk.since = now.Add(time.Duration(rand.Int64N(j)))
		}
		// Expire outside the owner: it claims and publishes, and its
		// expired result comes back here like any other. It outlives
		// Run's ctx (a stopping frontend still ends what it claimed),
		// within expireTimeout.
		go func(tk *ticket) {
			ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), expireTimeout)
			retry := t.expire(ectx, tk.id)
			cancel()
			select {
			case t.expired <- expiry{tk: tk, retry: retry}:
			case <-ctx.Done():
			}
		}(tk)
	}
}

// expiryReturned lets a ticket's next expiry start: after a backoff if
// its last was cut off from NATS (jittered, so that tickets cut off
// together do not all come back at once), else a wait after it started;
// an untracked ticket's that left nothing owed lets the ticket go.
func (t *Tracker) expiryReturned(s *state, tk *ticket, retry Retry) {
	tk.expiring, tk.owed = false, retry
	if retry != RetrySoon {
		tk.backoff = 0
		if tk.untracked && retry == RetryNone {
			t.forget(s, tk) // nothing owed (untrack)
		}
		return
	}
	tk.backoff = min(max(2*tk.backoff, retryFirst), retryMax)
	tk.retryAt = t.now().Add(tk.backoff + time.Duration(rand.Int64N(int64(tk.backoff/4))))
}
