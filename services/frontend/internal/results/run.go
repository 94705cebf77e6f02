package results

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/natsconn"
)

// state is what Run owns: the tracked tickets and what it knows of its
// subscription. Only Run's goroutine touches it.
type state struct {
	tickets  map[string]*ticket
	byPlayer map[string]map[string]*ticket // each player of a ticket -> ticket id -> ticket
	// down: the connection went down, and a catch-up is owed once it is
	// back (catchup.go).
	down bool
	// dropped is the subscription's drop count at the last tick.
	dropped int
	// catching: a catch-up is in flight; due, if set, is the reason of
	// the next one, started at the next tick (asked for during one, or
	// after one that failed).
	catching bool
	due      string
	// over counts the tickets whose every player's outcome is in (allIn),
	// kept a moment for a wait (endedKept): not waiting, not gauged.
	over int
}

// Run owns every tracked ticket until ctx ends. It subscribes first and
// serves no Track before the server holds the subscription; it returns
// an error only if it cannot subscribe.
func (t *Tracker) Run(ctx context.Context) error {
	// Listened to before subscribing, so no status change is missed.
	status := t.nc.StatusChanged(nats.RECONNECTING, nats.DISCONNECTED, nats.CONNECTED)
	defer t.nc.RemoveStatusListener(status)
	sub, err := t.subscribe(ctx)
	if err != nil || sub == nil {
		return err
	}
	t.subscribedOnce.Do(func() { close(t.subscribed) })
	defer func() { _ = sub.Unsubscribe() }()
	// The handover (handover.go) after the leaving roll call, on the
	// same connection: its takers' answers say both reached the server,
	// and a frontend stopped between the two is not awaited on every
	// roster for events.FollowsRollCallLife.
	var hsub *nats.Subscription
	defer func() { t.handOver(hsub) }()
	var fsub *nats.Subscription // the questions' (follows.go)
	defer func() {
		if fsub != nil {
			t.publishRollCall(true)
			_ = fsub.Unsubscribe()
		}
	}()
	t.callRoll(&fsub)
	hsub, handing := t.subscribeHandovers()
	s := &state{tickets: map[string]*ticket{}, byPlayer: map[string]map[string]*ticket{}}
	defer func() {
		for _, tk := range s.tickets {
			t.forget(s, tk)
		}
	}()
	ticks := t.ticks
	if ticks == nil {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		ticks = tick.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-t.reqs:
			r.reply <- t.apply(s, r)
		case st := <-status:
			t.statusChanged(ctx, s, st)
			if st == nats.CONNECTED {
				t.listenAgain()
			}
		case m := <-t.msgs:
			t.result(s, m)
		case m := <-t.fol.questions:
			t.answer(s, m)
		case c := <-t.caught:
			t.deliver(s, c.player, c.res)
		case err := <-t.caughtUp:
			t.caughtUpEnded(s, err)
		case e := <-t.expired:
			// The very ticket it started for: one forgotten and tracked
			// anew meanwhile is a new entry, whose own expiries say
			// what they leave owed.
			if s.tickets[e.tk.id] == e.tk {
				t.expiryReturned(s, e.tk, e.retry)
			}
		case <-ticks:
			t.checkDropped(ctx, s, sub)
			t.expireDue(ctx, s, t.now())
			t.callRoll(&fsub)
			if !handing {
				hsub, handing = t.subscribeHandovers()
			}
		}
	}
}

// subscribe makes the one subscription and waits until the server holds
// it, trying again while NATS does not answer (nats.go keeps the
// subscription and sends it again on reconnecting). nil, nil: ctx ended.
func (t *Tracker) subscribe(ctx context.Context) (*nats.Subscription, error) {
	before := t.nc.LastError()
	sub, err := t.nc.ChanSubscribe(t.subj.AllResults(), t.msgs)
	if err != nil {
		return nil, fmt.Errorf("subscribe to results: %w", err)
	}
	for {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := t.nc.FlushWithContext(fctx)
		cancel()
		// The server answers a subscription it refuses before the
		// flush: a frontend that may not hear results would take
		// tickets and tell no player of them.
		if last := t.nc.LastError(); last != before && natsconn.SubscriptionRefused(last, t.subj.AllResults()) {
			_ = sub.Unsubscribe()
			return nil, fmt.Errorf("subscribe to results: %w", last)
		}
		if err == nil {
			return sub, nil
		}
		if ctx.Err() != nil {
			_ = sub.Unsubscribe()
			return nil, nil
		}
		t.log.Warn("results subscription not confirmed by NATS; trying again", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// Subscribed is closed once Run hears every player's results: the
// server confirmed its subscription. Before, the frontend has no player's
// results to tell, and a creation's Track waits for Run (up to its
// call's bound) and fails: the frontend is ready only after it
// (services/frontend).
func (t *Tracker) Subscribed() <-chan struct{} { return t.subscribed }

// result takes a result heard: only one of a tracked player is decoded.
func (t *Tracker) result(s *state, m *nats.Msg) {
	player, ok := strings.CutPrefix(m.Subject, t.prefix)
	if !ok || s.byPlayer[player] == nil {
		return // a player another frontend follows, or nobody
	}
	res, err := events.DecodeResult(m.Data)
	if err != nil {
		t.log.Warn("bad result ignored", "subject", m.Subject, "err", err)
		return
	}
	t.deliver(s, player, res)
}

// deliver hands a result of player, heard or read back, to its ticket's
// waiters that follow player, if the ticket is tracked and the result is
// news for player. A terminal result ends the waits on its player; the
// ticket's first one counts its outcome and ends its expiries, and the
// ticket is forgotten once no wait on it is left if it had one, or kept
// endedKept for one if it never had (members.go, expireDue). A result
// naming a tracked ticket of player as the superseder of the one it
// tells marks that ticket (HeardSuperseding).
func (t *Tracker) deliver(s *state, player string, res events.Result) {
	if newer := events.SupersededBy(res); newer != "" && res.PlayerID == player && s.byPlayer[player][newer] != nil {
		s.byPlayer[player][newer].superseded(player)
	}
	tk := s.byPlayer[player][res.TicketID]
	if tk == nil {
		return // another ticket of the player
	}
	if last := tk.lastOf(player); last != nil && res.Status.Rank() <= last.Status.Rank() {
		return // a status it had (a catch-up reads some twice)
	}
	wasIn := tk.allIn()
	tk.setLast(player, &res)
	if !wasIn && tk.allIn() {
		s.over++
		t.gauge(s)
	}
	terminal := res.Status.Terminal()
	if terminal && tk.ended.IsZero() {
		// Counted before its waiters hear it: one that has heard it
		// finds it counted.
		t.met.outcomes.WithLabelValues(string(res.Status)).Inc()
		if res.Status == events.StatusAssigned {
			tk.trace.observe(t.met.toAssign, t.now().Sub(tk.created).Seconds())
		}
		tk.ended = t.now()
	}
	for w, p := range tk.waiters {
		if p != player {
			continue
		}
		select {
		case w <- res:
		default: // a waiter holds at most the last few results
		}
		if terminal {
			delete(tk.waiters, w)
			close(w)
		}
	}
	// A ticket never waited on is kept endedKept (expireDue): its stream
	// may be on its way.
	if terminal && len(tk.waiters) == 0 && tk.waited {
		t.forget(s, tk)
	}
}

// untrack stops following a ticket whose creation failed (Untrack), at
// once unless an expiry of it is in flight or owed a retry: that expiry
// may have won the ticket's claim and not told its players (their
// result's publish timed out), and only its retry tells them. A keyed
// ticket keeps its first attempt's creation time, so a later attempt
// that stores its record past the max wait has it expired at the tick
// after it is tracked, while the creation still runs; when that creation
// then failed and untracked it, the retry never came, and the claim said
// expired with no player told (chaos S80b). Kept, it is let go once an
// expiry of it leaves nothing owed (RetryNone: expiryReturned), or at
// its outcome, as any ticket; a Track of it again follows it as before.
func (t *Tracker) untrack(s *state, tk *ticket) {
	if !tk.expiring && tk.owed == RetryNone {
		t.forget(s, tk)
		return
	}
	// A failed creation vouches for none of its results: a wait reads
	// the stored state, which may say what its expiry's claim decided.
	tk.untracked, tk.creation = true, nil
}

// forget stops following a ticket (untracked, with its outcome and no
// wait left on it, or its other players' results overdue).
func (t *Tracker) forget(s *state, tk *ticket) {
	delete(s.tickets, tk.id)
	s.unindex(tk.player, tk.id)
	for p := range tk.others {
		s.unindex(p, tk.id)
	}
	for w := range tk.waiters {
		close(w)
	}
	if tk.allIn() {
		s.over--
	}
	t.gauge(s)
}

// gauge sets the waiting tickets' gauge: those tracked, less those over.
func (t *Tracker) gauge(s *state) { t.met.tracked.Set(float64(len(s.tickets) - s.over)) }

func (t *Tracker) apply(s *state, r request) reply {
	switch r.kind {
	case reqTrack:
		t.track(s, r)
	case reqUntrack:
		if tk, ok := s.tickets[r.id]; ok {
			t.untrack(s, tk)
		}
	case reqWait:
		return s.wait(r.id, r.player, r.waiter)
	case reqFollow:
		// One request: no result comes between the two (followed, a
		// party's ticket could be let go at another player's outcome
		// after the track and before the wait).
		t.track(s, r)
		return s.wait(r.id, r.follower, r.waiter)
	case reqHeard:
		tk, ok := s.tickets[r.id]
		if !ok {
			return reply{}
		}
		rep := reply{superseding: tk.superseding}
		if tk.last != nil {
			heard := *tk.last
			rep.heard = &heard
		}
		return rep
	case reqUnwait:
		if tk, ok := s.tickets[r.id]; ok {
			if _, waiting := tk.waiters[r.waiter]; waiting {
				delete(tk.waiters, r.waiter)
				close(r.waiter)
			}
		}
	}
	return reply{}
}

// track follows ticket r.id, unless it is followed already.
func (t *Tracker) track(s *state, r request) {
	if tk, ok := s.tickets[r.id]; ok {
		tk.untracked = false // a repeat's creation, or a stream: followed again
		return
	}
	tk := &ticket{id: r.id, player: r.player, mode: r.mode, created: r.created, since: r.created, creation: r.creation,
		trace: r.trace, waiters: map[chan events.Result]string{}}
	if len(r.others) > 0 {
		tk.others = make(map[string]*events.Result, len(r.others))
		for _, p := range r.others {
			tk.others[p] = nil
		}
	}
	s.tickets[r.id] = tk
	s.index(r.player, tk)
	for p := range tk.others {
		s.index(p, tk)
	}
	t.gauge(s)
}

// wait makes waiter a waiter on ticket id as player ("": its first),
// handing it the player's last result at once, if any. A player whose
// outcome came already is handed it and waiter closed: the stream that
// opens just after its outcome (past capacity, half of them) is answered
// from memory, where a read of the stored view cost the frontend and
// the NATS server two round trips (BENCHMARKS.md, "Thirty-first round").
func (s *state) wait(id, player string, waiter chan events.Result) reply {
	tk, ok := s.tickets[id]
	if !ok {
		return reply{err: ErrNotTracked}
	}
	player = cmp.Or(player, tk.player)
	if !tk.follows(player) {
		return reply{err: ErrNotTracked}
	}
	last := tk.lastOf(player)
	if last != nil && last.Status.Terminal() {
		waiter <- *last
		close(waiter)
		return reply{creation: tk.creation, handed: true}
	}
	tk.waiters[waiter] = player
	tk.waited = true
	if last != nil {
		waiter <- *last
	}
	return reply{creation: tk.creation}
}
