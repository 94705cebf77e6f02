// Package results follows the tickets a frontend is responsible for and
// hands their results to the clients waiting on them.
//
// Design: the frontend holds one core NATS subscription on every player's
// results (results.>), made and flushed when Run starts, before Run
// serves any Track: so a ticket tracked before it is published misses
// none of its results, and no ticket costs a SUB or an UNSUB at the
// server (issue #20). The subscription delivers into one channel
// (ChanSubscribe), and one goroutine, Run, owns every tracked ticket: it
// keeps the result of a tracked player (the subject names the player: a
// map lookup, no decoding for anyone else's), fans it out to waiters,
// records metrics, and expires tickets that waited past their mode's
// max_wait (Waits). No goroutine, subscription or JetStream consumer per
// player: a waiting ticket costs a small struct. A second subscription,
// also one per frontend, answers the frontends' questions of who follows
// a ticket (follows.go).
//
// What the subscription cannot hear is read back from the RESULTS stream
// (catchup.go): the results published while the connection was down, and
// those nats.go dropped when the channel was full (a slow consumer,
// counted and logged). Run then asks the stream's leader where each
// tracked ticket stands (its player's last result; the tickets service
// for a ticket whose player has moved on), and treats what it reads like
// what it heard: a status a ticket already has is ignored. No clock and
// no time window: see catchup.go for why.
package results

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Tracker follows tickets. Create it with New and start Run.
type Tracker struct {
	nc *nats.Conn
	// reader reads, from the stream's leader, the last results of the
	// players whose tickets a catch-up looks at.
	reader *events.LeaderReader
	subj   events.Subjects
	log    *slog.Logger
	waits  Waits
	expire Expirer
	// now is the tracker's clock, and ticks what wakes its expiries (a
	// ticker every second when nil): a test turns both by hand.
	now   func() time.Time
	ticks <-chan time.Time

	// prefix is what a result subject starts with before its player
	// (results.), so Run reads the player without decoding.
	prefix string
	msgs   chan *nats.Msg
	// fol answers and asks who follows a ticket (follows.go).
	fol follows
	// handing takes and gives the tickets to ask about (handover.go).
	handing atomic.Pointer[handovers]
	// subscribed closes once Run's results subscription is confirmed
	// (Subscribed).
	subscribed     chan struct{}
	subscribedOnce sync.Once
	reqs           chan request
	// expired receives each expiry that returned.
	expired chan expiry
	// caught receives the results a catch-up read from the stream, and
	// caughtUp each catch-up that ended (catchup.go).
	caught   chan caughtResult
	caughtUp chan error
	// outcomes reads a ticket its player's last result does not tell
	// about (ReadOutcomesWith); nil: none.
	outcomes atomic.Pointer[Outcomes]
	met      metrics
}

type metrics struct {
	tracked  prometheus.Gauge
	outcomes *prometheus.CounterVec
	toAssign prometheus.Histogram
	// dropped counts results nats.go dropped (the channel was full);
	// catchUps counts the reads of the stream, by reason.
	dropped  prometheus.Counter
	catchUps *prometheus.CounterVec
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
	id string
	// player is its first player, whose results a waiter that names none
	// gets; its other players' (others) are followed for their own
	// waiters (members.go).
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
	// owed is what its last expiry left owed (RetryNone before any).
	backoff  time.Duration
	retryAt  time.Time
	owed     Retry
	creation *Creation
	last     *events.Result // the first player's
	// others holds the last result of each of a party's other players
	// (nil for one player): each player's join token is on its own.
	others map[string]*events.Result
	// ended is when its first terminal result came, whichever player's:
	// its outcome (it is forgotten memberStraggle after at the latest).
	ended time.Time
	// waiters are its waiters, each with the player it follows; waited,
	// whether it ever had one (members.go: let go once none is left).
	waiters map[chan events.Result]string
	waited  bool
	// trace is the trace id of the request that started following it
	// (zero: none), the exemplar of its time to assignment.
	trace traceID
	// superseding: an older ticket of its one player was heard
	// superseded by it (events.SupersededBy; HeardSuperseding).
	superseding bool
	// untracked: Untrack came while an expiry of it was in flight or
	// left something owed (untrack): let go once an expiry of it returns
	// RetryNone, or as any ticket at its outcome; cleared by a Track.
	untracked bool
}

type request struct {
	kind     int
	id       string
	player   string   // Track, Follow: the first player; Wait, Unwait: the player followed ("": the first)
	follower string   // Follow: the player followed ("": the first)
	others   []string // Track: the other players (a party's)
	mode     string
	created  time.Time
	creation *Creation
	trace    traceID
	waiter   chan events.Result
	reply    chan reply
}

type reply struct {
	err      error
	creation *Creation
	handed   bool           // the wait was handed its outcome and ended: no stop owed
	heard    *events.Result // Heard's
	// superseding: HeardSuperseding's
	superseding bool
}

const (
	reqTrack = iota
	reqUntrack
	reqWait
	reqUnwait
	reqFollow
	reqHeard
)

// New returns a tracker. expire is called for a ticket still waiting after
// waits(its mode).
func New(nc *nats.Conn, subj events.Subjects, log *slog.Logger, reg prometheus.Registerer, waits Waits, expire Expirer) *Tracker {
	t := &Tracker{
		nc: nc, reader: events.NewLeaderReader(nc), subj: subj, log: log, waits: waits, expire: expire, now: time.Now,
		prefix: subj.Result(""),
		// Every player's results come through it: 65,536 is several
		// seconds of them at 10,000 results/s, and Run spends well under
		// a microsecond on one of a player it does not track. When it is
		// full nats.go drops what comes (a slow consumer): Run counts
		// the drops and reads them back from the stream (catchup.go).
		msgs: make(chan *nats.Msg, 1<<16),
		fol: follows{instance: nuid.Next(), prefix: subj.Follows(""), rollCall: subj.FollowsRollCall(),
			questions: make(chan *nats.Msg, questionsBuffer), every: events.FollowsRollCallEvery, listen: events.FollowsListenFirst,
			heard: map[string]time.Time{}},
		reqs:       make(chan request),
		expired:    make(chan expiry),
		caught:     make(chan caughtResult, 256),
		caughtUp:   make(chan error, 1),
		subscribed: make(chan struct{}),
		met: metrics{
			tracked: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "quickmatch_frontend_waiting_tickets", Help: "Tickets this frontend follows that have no outcome yet (or whose outcome a party player's own result is awaited for, 30 s at most).",
			}),
			outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "quickmatch_frontend_ticket_outcomes_total", Help: "Outcomes of the tickets this frontend followed.",
			}, []string{"status"}),
			toAssign: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "quickmatch_frontend_time_to_assignment_seconds", Help: "From ticket creation to assignment.",
				Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
			}),
			dropped: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "quickmatch_frontend_results_dropped_total", Help: "Results the frontend's subscription dropped because it fell behind (each is read back from the RESULTS stream).",
			}),
			catchUps: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "quickmatch_frontend_result_catchups_total", Help: "Reads of the RESULTS stream for results the subscription missed, by reason (reconnect, dropped).",
			}, []string{"reason"}),
		},
	}
	reg.MustRegister(t.met.tracked, t.met.outcomes, t.met.toAssign, t.met.dropped, t.met.catchUps)
	return t
}

// Track follows a ticket from now on. It returns once Run holds it; Run
// serves no Track before its subscription is registered with the server,
// so the ticket may be published after it. No round trip: the
// subscription is the frontend's, not the ticket's. creation is set by
// the caller that tracks a ticket before publishing it, and nil
// otherwise. The trace id of ctx's traceparent (events.Meta), if any, is
// kept as the exemplar of the ticket's time to assignment. Tracking a
// ticket that is tracked already does nothing.
func (t *Tracker) Track(ctx context.Context, tk *events.Ticket, creation *Creation) error {
	players := tk.Players()
	r := t.call(ctx, request{kind: reqTrack, id: tk.TicketID, player: players[0], others: players[1:], mode: tk.Mode,
		created: tk.CreatedAt, creation: creation, trace: traceOf(events.MetaFrom(ctx))})
	return r.err
}

// Untrack stops following a ticket (its creation failed): at once, or,
// with an expiry of it in flight or owed a retry, once that ends (untrack).
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

// Wait starts waiting on a tracked ticket's results as player, one of
// its players, gets them ("": the first player; tickets.Follower). A
// ticket not tracked, or that player is not of, is ErrNotTracked; one
// whose outcome for player came already is handed it on Results, closed.
func (t *Tracker) Wait(ctx context.Context, ticketID, player string) (Waiting, error) {
	return t.waiting(ctx, request{kind: reqWait, id: ticketID, player: player})
}

// Follow is Track and then Wait as player, with no result heard between
// them: a party's ticket tracked already could otherwise be let go at
// another player's outcome in between (its waits over), and the wait
// find it not tracked while player's own result was not stored yet.
func (t *Tracker) Follow(ctx context.Context, tk *events.Ticket, player string) (Waiting, error) {
	players := tk.Players()
	return t.waiting(ctx, request{kind: reqFollow, id: tk.TicketID, player: players[0], others: players[1:], follower: player,
		mode: tk.Mode, created: tk.CreatedAt, trace: traceOf(events.MetaFrom(ctx))})
}

// waiting makes the waiter of r, a Wait or a Follow.
func (t *Tracker) waiting(ctx context.Context, r request) (Waiting, error) {
	ch := make(chan events.Result, 4)
	r.waiter = ch
	rep := t.call(ctx, r)
	if rep.err != nil {
		return Waiting{}, rep.err
	}
	if rep.handed {
		return Waiting{Results: ch, Creation: rep.creation, Stop: func() {}}, nil
	}
	ticketID := r.id
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = t.call(ctx, request{kind: reqUnwait, id: ticketID, waiter: ch})
	}
	return Waiting{Results: ch, Creation: rep.creation, Stop: stop}, nil
}

// Heard is the last result heard for a tracked ticket's first player
// (nil: none yet, or not tracked). A creation whose reads of its ticket's
// claim failed learns from it what its one subscription heard all the
// same: a matcher that reached the buckets its frontend could not put
// the ticket in a match, and told it (chaos S62).
func (t *Tracker) Heard(ctx context.Context, ticketID string) *events.Result {
	return t.call(ctx, request{kind: reqHeard, id: ticketID}).heard
}

// HeardSuperseding reports whether a result was heard telling an older
// ticket of a tracked one-player ticket's player "superseded by" it
// (events.SupersededBy): a take of it, a matcher's or a frontend's, got
// that far. It is a hint, not proof that the ticket is its player's live
// one: a take tells before it writes the player's entry, and may fail
// in between (tickets.Service.takenElsewhere reads the entry). A
// replacement whose own take and withdrawal were both cut off learns
// from it that its shard's owner may have taken it in (chaos S65).
// Never for a party's ticket: an older ticket's players are each told
// the same name, while the take had reached only the first player's.
func (t *Tracker) HeardSuperseding(ctx context.Context, ticketID string) bool {
	return t.call(ctx, request{kind: reqHeard, id: ticketID}).superseding
}

// ErrNotTracked is returned by Wait for a ticket that is not tracked.
var ErrNotTracked = fmt.Errorf("ticket is not tracked")

// callWait bounds a call whose ctx has none (a request's, or one
// detached from it to undo a creation): Run answers within microseconds
// while it runs, and not at all before it has subscribed (NATS stalled
// at the start) or once it has ended, when a creation waited for it
// holding its admission slot, and an Untrack for good.
const callWait = 2 * time.Second

func (t *Tracker) call(ctx context.Context, r request) reply {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, callWait)
		defer cancel()
	}
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
