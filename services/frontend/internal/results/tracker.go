// Package results follows the tickets a frontend is responsible for and
// hands their results to the clients waiting on them.
//
// Design: for every tracked ticket the frontend holds one core NATS
// subscription on the first player's result subject (results.<player_id>),
// made before the ticket is published so that no result can be missed, and
// dropped when the ticket ends. All subscriptions deliver into one channel
// (ChanSubscribe), and one goroutine, Run, owns every tracked ticket: it
// fans results out to waiters, records metrics, and expires tickets that
// waited past their mode's max_wait (Waits). No goroutine and no JetStream consumer per
// player: a waiting ticket costs a subscription and a small struct.
package results

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Tracker follows tickets. Create it with New and start Run.
type Tracker struct {
	nc     *nats.Conn
	subj   events.Subjects
	log    *slog.Logger
	waits  Waits
	expire Expirer
	// now is the tracker's clock, and ticks what wakes its expiries (a
	// ticker every second when nil): a test turns both by hand.
	now   func() time.Time
	ticks <-chan time.Time

	msgs chan *nats.Msg
	reqs chan request
	// expired receives each expiry that returned.
	expired chan expiry
	met     metrics
}

type metrics struct {
	tracked  prometheus.Gauge
	outcomes *prometheus.CounterVec
	toAssign prometheus.Histogram
}

// Creation is what a ticket was created with. The tracker keeps it for a
// ticket tracked before it was published: every result of such a ticket
// passes through the tracker, so a waiter needs nothing from JetStream.
type Creation struct {
	// Shard is the ticket's own shard.
	Shard events.Shard
	Mode  string
	// Players are the ticket's players, who may follow it.
	Players []string
}

// ticket is a tracked ticket. Only Run touches it.
type ticket struct {
	id      string
	player  string
	mode    string
	created time.Time
	// since is when its wait is counted from: created, then its last
	// expiry, jittered (an expiry that lost to an outcome is not tried
	// every tick; see expireDue).
	since time.Time
	// expiring: an expiry of it is in flight (Run starts no other).
	expiring bool
	// backoff is the last wait before a retry of an expiry cut off from
	// NATS, zero once one ended; retryAt, if set, is when the next is due.
	backoff  time.Duration
	retryAt  time.Time
	creation *Creation
	last     *events.Result
	waiters  map[chan events.Result]struct{}
}

type request struct {
	kind     int
	id       string
	player   string
	mode     string
	created  time.Time
	creation *Creation
	waiter   chan events.Result
	reply    chan reply
}

type reply struct {
	err error
	// subscribed: Track made a new subscription, which the caller flushes.
	subscribed bool
	creation   *Creation
}

const (
	reqTrack = iota
	reqUntrack
	reqWait
	reqUnwait
)

// New returns a tracker. expire is called for a ticket still waiting after
// waits(its mode).
func New(nc *nats.Conn, subj events.Subjects, log *slog.Logger, reg prometheus.Registerer, waits Waits, expire Expirer) *Tracker {
	t := &Tracker{
		nc: nc, subj: subj, log: log, waits: waits, expire: expire, now: time.Now,
		// Sized for bursts of results; when it is full nats.go drops
		// messages for the subscriptions behind it (and reports a slow
		// consumer): a waiter then still gets the result from the stream
		// on its next look, see Wait.
		msgs:    make(chan *nats.Msg, 1<<16),
		reqs:    make(chan request),
		expired: make(chan expiry),
		met: metrics{
			tracked: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "quickmatch_frontend_waiting_tickets", Help: "Tickets this frontend follows that have no outcome yet.",
			}),
			outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "quickmatch_frontend_ticket_outcomes_total", Help: "Outcomes of the tickets this frontend followed.",
			}, []string{"status"}),
			toAssign: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "quickmatch_frontend_time_to_assignment_seconds", Help: "From ticket creation to assignment.",
				Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
			}),
		},
	}
	reg.MustRegister(t.met.tracked, t.met.outcomes, t.met.toAssign)
	return t
}

// Track follows a ticket from now on. It returns once the subscription is
// registered with the server, so the ticket may be published after it.
// creation is set by the caller that tracks a ticket before publishing it,
// and nil otherwise. Tracking a ticket that is tracked already does nothing.
func (t *Tracker) Track(ctx context.Context, tk *events.Ticket, creation *Creation) error {
	ticketID, player := tk.TicketID, tk.Players()[0]
	r := t.call(ctx, request{kind: reqTrack, id: ticketID, player: player, mode: tk.Mode, created: tk.CreatedAt, creation: creation})
	if r.err != nil || !r.subscribed {
		return r.err
	}
	// Flush makes the server hold the subscription before the ticket is
	// published, so even an instant result is seen. It is a round trip,
	// so it is done here and not in Run: tracks flush side by side.
	if err := t.nc.Flush(); err != nil {
		t.Untrack(context.WithoutCancel(ctx), ticketID)
		return fmt.Errorf("subscribe to results of %s: %w", player, err)
	}
	return nil
}

// Untrack stops following a ticket (its publish failed).
func (t *Tracker) Untrack(ctx context.Context, ticketID string) {
	_ = t.call(ctx, request{kind: reqUntrack, id: ticketID})
}

// Waiting is a waiter on a tracked ticket.
type Waiting struct {
	// Results receives the ticket's results, first the latest one already
	// seen if any. It is closed after a terminal result, or when the
	// ticket stops being tracked.
	Results <-chan events.Result
	// Creation is set if the ticket was tracked before it was published:
	// then Results misses none of its results.
	Creation *Creation
	// Stop ends the wait.
	Stop func()
}

// Wait starts waiting on a tracked ticket's results.
func (t *Tracker) Wait(ctx context.Context, ticketID string) (Waiting, error) {
	ch := make(chan events.Result, 4)
	r := t.call(ctx, request{kind: reqWait, id: ticketID, waiter: ch})
	if r.err != nil {
		return Waiting{}, r.err
	}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = t.call(ctx, request{kind: reqUnwait, id: ticketID, waiter: ch})
	}
	return Waiting{Results: ch, Creation: r.creation, Stop: stop}, nil
}

// ErrNotTracked is returned by Wait for a ticket that is not tracked.
var ErrNotTracked = fmt.Errorf("ticket is not tracked")

func (t *Tracker) call(ctx context.Context, r request) reply {
	r.reply = make(chan reply, 1)
	select {
	case t.reqs <- r:
	case <-ctx.Done():
		return reply{err: ctx.Err()}
	}
	select {
	case rep := <-r.reply:
		return rep
	case <-ctx.Done():
		return reply{err: ctx.Err()}
	}
}

// Run owns every tracked ticket until ctx ends.
func (t *Tracker) Run(ctx context.Context) error {
	tickets := map[string]*ticket{}
	subs := map[string]*nats.Subscription{} // player -> subscription
	byPlayer := map[string]map[string]*ticket{}
	ticks := t.ticks
	if ticks == nil {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		ticks = tick.C
	}

	drop := func(tk *ticket) {
		delete(tickets, tk.id)
		ts := byPlayer[tk.player]
		delete(ts, tk.id)
		if len(ts) == 0 {
			delete(byPlayer, tk.player)
			if sub := subs[tk.player]; sub != nil {
				_ = sub.Unsubscribe()
				delete(subs, tk.player)
			}
		}
		for w := range tk.waiters {
			close(w)
		}
		t.met.tracked.Set(float64(len(tickets)))
	}
	defer func() {
		for _, tk := range tickets {
			drop(tk)
		}
	}()

	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-t.reqs:
			r.reply <- t.apply(r, tickets, subs, byPlayer, drop)
		case m := <-t.msgs:
			res, err := events.DecodeResult(m.Data)
			if err != nil {
				t.log.Warn("bad result ignored", "subject", m.Subject, "err", err)
				continue
			}
			tk := byPlayer[res.PlayerID][res.TicketID]
			if tk == nil || tk.last != nil && res.Status.Rank() <= tk.last.Status.Rank() {
				continue // another ticket of the player, or an old status
			}
			tk.last = &res
			for w := range tk.waiters {
				select {
				case w <- res:
				default: // a waiter holds at most the last few results
				}
			}
			if res.Status.Terminal() {
				t.met.outcomes.WithLabelValues(string(res.Status)).Inc()
				if res.Status == events.StatusAssigned {
					t.met.toAssign.Observe(t.now().Sub(tk.created).Seconds())
				}
				drop(tk)
			}
		case e := <-t.expired:
			if tk := tickets[e.id]; tk != nil {
				t.expiryReturned(tk, e.soon)
			}
		case <-ticks:
			t.expireDue(ctx, t.now(), tickets)
		}
	}
}

func (t *Tracker) apply(r request, tickets map[string]*ticket, subs map[string]*nats.Subscription, byPlayer map[string]map[string]*ticket, drop func(*ticket)) reply {
	var rep reply
	switch r.kind {
	case reqTrack:
		if _, ok := tickets[r.id]; ok {
			return rep
		}
		if subs[r.player] == nil {
			sub, err := t.nc.ChanSubscribe(t.subj.Result(r.player), t.msgs)
			if err != nil {
				return reply{err: fmt.Errorf("subscribe to results of %s: %w", r.player, err)}
			}
			subs[r.player] = sub
			rep.subscribed = true
		}
		tk := &ticket{id: r.id, player: r.player, mode: r.mode, created: r.created, since: r.created, creation: r.creation, waiters: map[chan events.Result]struct{}{}}
		tickets[r.id] = tk
		if byPlayer[r.player] == nil {
			byPlayer[r.player] = map[string]*ticket{}
		}
		byPlayer[r.player][r.id] = tk
		t.met.tracked.Set(float64(len(tickets)))
	case reqUntrack:
		if tk, ok := tickets[r.id]; ok {
			drop(tk)
		}
	case reqWait:
		tk, ok := tickets[r.id]
		if !ok {
			return reply{err: ErrNotTracked}
		}
		rep.creation = tk.creation
		tk.waiters[r.waiter] = struct{}{}
		if tk.last != nil {
			r.waiter <- *tk.last
		}
	case reqUnwait:
		if tk, ok := tickets[r.id]; ok {
			if _, waiting := tk.waiters[r.waiter]; waiting {
				delete(tk.waiters, r.waiter)
				close(r.waiter)
			}
		}
	}
	return rep
}
