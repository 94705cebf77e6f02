package matcher

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// ender ends tickets that leave a shard unmatched (expired ones): it
// claims each for its outcome, tells its players and acks it.
type ender struct {
	shard   events.Shard
	claims  *events.Claims
	rec     *recoverer
	acks    acker
	met     *metrics
	timeout time.Duration
	log     *slog.Logger
	// now is the worker's clock (Worker.clock): a wait span's end.
	now func() time.Time
	// parallel is how many expiries of one sweep run at once
	// (expireAll); 0: expiryParallel.
	parallel int
}

// expiryParallel is how many expiries of one sweep run at once. Each
// takes four round trips (the claim, the told mark's read, the results,
// the mark); one after another, a sweep that found a thousand due (a
// mode no one else queued for, or the tickets a partition kept from
// matching) held the shard's loop, and every match of it, for seconds.
const expiryParallel = 32

// expireAll ends the tickets of one sweep that waited their mode's max
// wait, expiryParallel at once, and returns when each has its answer.
// Once one finds JetStream failing (a cut, a bucket without a leader),
// the ones not started yet are nakked untried: each would wait out the
// same bound, and the shard would match nothing meanwhile (before, a
// sweep of K due tickets under a cut held the loop K bounds). They come
// back after nakDelay and are expired at a later sweep.
func (en *ender) expireAll(ctx context.Context, due []*pool.Entry, mode *rules.Mode) {
	n := cmp.Or(en.parallel, expiryParallel)
	slots := make(chan struct{}, n)
	var failed atomic.Bool
	var wg sync.WaitGroup
	for _, e := range due {
		slots <- struct{}{}
		if failed.Load() {
			<-slots
			en.acks.nak(e.Ack)
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if !en.expire(ctx, e, mode) {
				failed.Store(true)
			}
		})
	}
	wg.Wait()
}

// expire ends a ticket that waited its mode's max wait. It reports
// whether JetStream answered (end).
func (en *ender) expire(ctx context.Context, e *pool.Entry, mode *rules.Mode) bool {
	if e.Visitor {
		en.acks.ack(e.Ack) // its home shard expires it and tells the players
		return true
	}
	waited(ctx, e, "expired", en.now())
	return en.end(ctx, e, mode.Name, events.StatusExpired, events.OwnerExpired, fmt.Sprintf("no match within %s", time.Duration(mode.MaxWait)))
}

// end claims a ticket for owner, tells its players and acks. A ticket whose
// claim another owner holds is acked once its players were told what that
// owner decided (tellClaimed: the owner may have failed to tell them).
// If the claim or a result cannot be stored, the ticket is nakked, so the
// next try (or the next owner) tells them, and end reports false: JetStream
// did not answer. Other naks (a match not settled yet) report true.
func (en *ender) end(ctx context.Context, e *pool.Entry, mode string, status events.Status, owner, reason string) bool {
	pctx, cancel := context.WithTimeout(ctx, en.timeout)
	defer cancel()
	won, cur, err := en.claims.Claim(pctx, e.TicketID, owner)
	if err == nil && !won {
		if id, isMatch := events.OwnerMatchID(cur); isMatch {
			switch en.rec.recoverMatch(ctx, id, e.TicketID) {
			case released: // the dead match is undone: claim again
				won, cur, err = en.claims.Claim(pctx, e.TicketID, owner)
			case undecided:
				// Decide later, when the other match is out or undone.
				en.log.Info("ticket held by a match not settled yet; nakked", "ticket_id", e.TicketID, "owner", cur)
				en.acks.nak(e.Ack)
				return true
			}
		}
	}
	if err != nil {
		en.log.Error("claim ticket; will retry", "ticket_id", e.TicketID, "err", err)
		en.acks.nak(e.Ack)
		return false
	}
	if !won && cur == "" {
		// Held by a match that gave it back before the holder could be
		// read: no one decided the ticket. Its redelivery decides.
		en.acks.nak(e.Ack)
		return true
	}
	if !won {
		// Its claimer may have failed to tell its players, or died
		// before it did (tellClaimed).
		if err := en.rec.tellClaimed(pctx, en.shard, mode, e, cur, ""); err != nil {
			en.log.Error("tell the players of a ticket decided elsewhere; will retry", "ticket_id", e.TicketID, "owner", cur, "err", err)
			en.acks.nak(e.Ack)
			return false
		}
		en.acks.ack(e.Ack)
		en.log.Info("ticket already decided; dropped", "ticket_id", e.TicketID, "owner", cur)
		return true
	}
	// Told once (events.Claims.Tell): a redelivery after a death past
	// the publish finds the telling marked.
	if err := en.rec.tellClaimed(pctx, en.shard, mode, e, owner, reason); err != nil {
		en.log.Error("publish result; will retry", "ticket_id", e.TicketID, "err", err)
		en.acks.nak(e.Ack)
		return false
	}
	en.acks.ack(e.Ack)
	en.met.tickets.WithLabelValues(string(status)).Inc()
	en.log.Info("ticket ended", "ticket_id", e.TicketID, "status", status, "reason", reason)
	return true
}

// rejected are the "failed" results of ticket t, for reason.
func rejected(t events.Ticket, reason string) []events.Result {
	players := t.Players()
	rs := make([]events.Result, len(players))
	for i, p := range players {
		rs[i] = events.Result{TicketID: t.TicketID, PlayerID: p, Status: events.StatusFailed, Reason: reason}
	}
	return rs
}
