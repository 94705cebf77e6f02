package matcher

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// runner owns one shard: its pools (one per mode) and everything done to
// them. Only its run goroutine touches them; the parts it hands work to
// (in, commits, ends, offers) hold no shard state.
type runner struct {
	shard events.Shard
	log   *slog.Logger
	js    jetstream.JetStream
	subj  events.Subjects
	// sweepEvery and anchors are Config.Sweep and Config.SweepAnchors.
	sweepEvery time.Duration
	anchors    int
	// now is the worker's clock (Worker.clock).
	now  func() time.Time
	acks acker
	met  *metrics

	in      *intake
	commits *committer
	ends    *ender
	offers  *offerer
	// stats counts matched waits and reports the shard's expected-wait
	// figures (events.QueueStats) to the queue bucket (stats.go).
	stats *waitStats

	// rules is the worker's rule set in force; set is the one the pools
	// were last given (syncRules). pools has one pool per mode of set,
	// and keeps the pool of a mode a reload removed (see syncRules).
	rules *rules.Current
	set   *rules.Set
	pools map[string]*pool.Pool
	// backfills are the backfill requests held, by room (match id): the
	// room's latest ask only (backfill.go).
	backfills map[string]*heldBackfill
	// unpublished are matches whose tickets are claimed but whose publish
	// failed: they are retried as they are, with the same id, and handed
	// to outbox if the shard is handed back first.
	unpublished []unpublishedMatch
	outbox      *outbox
	// toOffer are the waiting tickets that still have another shard to
	// be offered to, by when the next offer is due (offer.go), so the
	// sweep looks at those due and not at the whole pool.
	toOffer offerQueue
	// ended remembers recent cancel notices (tickets cancelled, expired or
	// superseded), for a ticket whose notice arrives before the ticket does.
	ended *recent[struct{}]
	// copies drops the copies of tickets matched elsewhere that the
	// pools hold, as matched notices name them (copies.go).
	copies *copies
	// undone remembers recent matches a commit found undone by another
	// worker with none of their tickets stale (claims released as a dead
	// matcher's), and those the runner's recoveries undid: the same
	// tickets matched together again get a new id (matchID), since that
	// match's decision stands for good. Shared with the recoverer.
	undone *spent

	held atomic.Int64 // tickets in the pools at the last sweep

	// inflight are the tickets of formed matches whose claims and
	// publishes are under way (commit): out of the pools, not yet settled;
	// each with the stream sequence of its message.
	inflight map[string]uint64
	// forming are the matches formed and not yet committed: the next
	// batch (commitFormed). committed receives each match's outcome;
	// committing counts the matches committed whose outcome the runner
	// has not taken yet (with forming at most maxInFlight, the channel's
	// capacity, so a commit never blocks); batches counts the batches in
	// their phases (commitTurn).
	forming    []formed
	committed  chan commitOutcome
	committing int
	batches    atomic.Int32

	// admitting are the tickets being taken as their players' live
	// ticket (events.Players: a few round trips, off this goroutine),
	// by id; admitted receives each outcome, and admissions counts those
	// the runner has not taken back yet (at most maxAdmitting).
	admitting  map[string]*pool.Entry
	admitted   chan admission
	admissions int

	// functions are the calls to the modes' match functions (function.go).
	functions *functions

	// feed consumes the shard and hands its deliveries to inbox.
	feed    *feed
	inbox   chan jetstream.Msg
	cancels chan string
	stopC   chan struct{}
	done    chan struct{}
}

// newRunner makes the runner of shard s and its own parts, from w's
// clients and settings; it shares w's intake and match state (w must be
// bound).
func newRunner(w *Worker, s events.Shard) *runner {
	log := w.log.With("shard", s.String())
	timeout := w.cfg.PublishTimeout
	undone := newSpent()
	rec := &recoverer{matchState: w.state, now: w.clock, log: log, shard: s, since: w.clock(), abandoned: newAbandoned(), spent: undone}
	offers := newOfferer(w, s, log)
	// A nak no consumer leader confirmed resets this shard's consumer
	// (acker says why).
	var r *runner
	acks := w.acks
	acks.lost = func(reply string) { r.feed.nakLost(reply) }
	r = &runner{
		shard: s, log: log, js: w.js, subj: w.subj, sweepEvery: w.cfg.Sweep, anchors: w.cfg.SweepAnchors,
		now: w.clock, acks: acks, met: w.met, in: w.in,
		commits: &committer{matchState: w.state, rec: rec, acks: acks, met: w.met, log: log},
		ends:    &ender{shard: s, claims: w.state.claims, rec: rec, acks: acks, met: w.met, timeout: timeout, log: log, now: w.clock},
		offers:  offers,
		stats:   newWaitStats(s, w.js, w.subj, timeout, log),
		pools:   map[string]*pool.Pool{}, ended: newRecent[struct{}](0), undone: undone,
		inflight: map[string]uint64{}, backfills: map[string]*heldBackfill{},
		inbox: make(chan jetstream.Msg, 512), cancels: make(chan string, 256),
		copies:    newCopies(),
		committed: make(chan commitOutcome, maxInFlight),
		admitting: map[string]*pool.Entry{}, admitted: make(chan admission, maxAdmitting), functions: newFunctions(),
		stopC: make(chan struct{}), done: make(chan struct{}), outbox: w.outbox,
	}
	r.feed = newFeed(r, w.nc, timeout)
	r.rules = w.rules
	r.syncRules()
	return r
}

// waiting is how many tickets the runner's pools hold, as of its last
// sweep (read from other goroutines, so it is the metric's copy).
func (r *runner) waiting() int { return int(r.held.Load()) }

// stop ends the runner and waits until its tickets are handed back.
func (r *runner) stop() {
	close(r.stopC)
	<-r.done
}

// cancel asks the runner to drop a ticket whose cancel notice came
// (cancelled, expired or superseded).
func (r *runner) cancel(ticketID string) {
	select {
	case r.cancels <- ticketID:
	case <-r.stopC:
	}
}

func (r *runner) run(ctx context.Context) {
	defer close(r.done)
	// The match-function calls and queue-figure writes a sweep leaves
	// running (calls) end with the runner, before it counts as stopped.
	calls, endCalls := context.WithCancel(ctx)
	defer func() {
		endCalls()
		r.functions.calls.Wait()
		r.stats.writing.Wait()
	}()
	// live ends when the runner stops: no consumer is reset or started
	// after (its next owner may be consuming already).
	live, endLive := context.WithCancel(ctx)
	defer endLive()
	go func() {
		select {
		case <-r.stopC:
			endLive()
		case <-live.Done():
		}
	}()
	// The consumers start beside the loop, not before it: a start retries
	// until each consumer is reset (one may have no leader for long), and
	// what those started already deliver is served meanwhile, not left
	// in an inbox nobody reads. The runner's state stays its own: start
	// and watch touch only the consumers, and feed.stop waits for both.
	go func() {
		if r.feed.start(live) == nil {
			r.feed.watch(live)
		}
	}()
	tick := time.NewTicker(r.sweepEvery)
	defer tick.Stop()
	for {
		// A stop comes first: a stopping runner takes nothing more in.
		select {
		case <-r.stopC:
			r.handBack(ctx)
			return
		default:
		}
		select {
		case <-r.stopC:
			r.handBack(ctx)
			return
		case o := <-r.committed:
			r.settleCommit(ctx, o, true)
		case a := <-r.admitted:
			r.settleAdmission(ctx, a, true)
		case c := <-r.functions.replies:
			r.settleCall(ctx, c)
		case msg := <-r.inbox:
			if r.isBackfill(msg) {
				r.addBackfill(ctx, msg)
			} else {
				r.add(ctx, msg)
			}
		case id := <-r.cancels:
			r.dropEnded(id)
		case n := <-r.copies.notices:
			r.takeMatchedNotice(ctx, n)
		case c := <-r.copies.checks:
			r.settleCopyCheck(ctx, c, true)
		case <-tick.C:
			r.sweep(ctx, calls, r.now()) // the worker's one clock, not the ticker's
			r.commitTurn(ctx, true)
			continue
		}
		r.commitTurn(ctx, false)
	}
}

// handBack hands the shard back once the runner is stopping: its
// consumers end first, nakking what they buffered (feed.stop), then
// what waits in its inbox is nakked, what is under way is settled and
// every ticket held is released.
func (r *runner) handBack(ctx context.Context) {
	r.feed.stop()
	r.nakInbox()
	for r.admissions > 0 {
		r.settleAdmission(ctx, <-r.admitted, false)
	}
	r.commitFormed(ctx) // what was formed is settled as any commit
	for r.committing > 0 {
		r.settleCommit(ctx, <-r.committed, false)
	}
	// Last: a commit handed back may have begun a copy's read
	// (putBack). Each is bounded by PublishTimeout.
	for r.copies.underway > 0 {
		r.settleCopyCheck(ctx, <-r.copies.checks, false)
	}
	r.release(ctx)
}

// stop ends the consumers once the runner is stopping (stopC closed):
// no start or reset after it (start failed or watch returned: watched),
// so it has every consumer started, and every message they buffered is
// nakked (a drain hands each to handle, which naks it), within
// drainWait. Then no delivery reaches the inbox any more: the runner
// naks what is in it.
func (f *feed) stop() {
	<-f.watched
	f.mu.Lock()
	ccs := append([]jetstream.ConsumeContext(nil), f.ccs...)
	f.mu.Unlock()
	deadline := time.After(drainWait)
	for _, cc := range ccs {
		if cc != nil {
			cc.Drain()
		}
	}
	for _, cc := range ccs {
		if cc == nil {
			continue
		}
		select {
		case <-cc.Closed():
		case <-deadline:
		}
	}
	f.gate.Lock()
	f.closed = true
	f.gate.Unlock()
}

// nakInbox naks the deliveries the runner has not taken in yet, so that
// the next owner gets them at once, not after the pool's AckWait. No
// delivery reaches the inbox once the feed is stopped.
func (r *runner) nakInbox() {
	for {
		select {
		case msg := <-r.inbox:
			_ = msg.Nak()
		default:
			return
		}
	}
}

// release hands every held ticket back for the next owner, after one last
// try at publishing unpublished matches; those still unsent go on to the
// worker's outbox, which keeps trying.
func (r *runner) release(ctx context.Context) {
	r.retryUnpublished(ctx)
	for _, um := range r.unpublished {
		// The match is decided published: its claims stay its own, and
		// the next owner, meeting them, publishes it (recoverMatch), as
		// the outbox does if the tickets never come back to anyone.
		for _, e := range um.entries {
			r.acks.handBack(e.Ack)
		}
	}
	r.outbox.add(r.unpublished)
	r.unpublished = nil
	n := 0
	for name, p := range r.pools {
		p.Each(func(e *pool.Entry) { r.acks.handBack(e.Ack); n++ })
		r.met.waiting.DeleteLabelValues(r.shard.String(), name)
	}
	r.releaseBackfills()
	r.acks.flush()
	r.log.Info("shard released", "tickets_handed_back", n)
}

// matchDue tries each ticket of p that waited its max wait, and no more
// than dueMatchFor past it, for a match before the sweep expires those
// left. One whose partner waits beside it was kept from a match by
// something else: its commits found the claims unanswered while its
// wait ran out (chaos S51c and S54: a NATS server's restart met a cut,
// and the claims went unanswered for 10-25 s), or it came late. Expired
// first, it was told "expired" beside that partner. A due ticket whose
// commits keep failing is tried at each sweep, and expired once
// dueMatchFor has passed (the matches bucket without a leader, the
// claims answering: its expiry needs only those). It never waits for
// room among the matches in flight: a commit's outcome waits out a
// bound under a cut, and the sweep would hold the shard's loop one per
// 64 matches (review: 600 due tickets that fit, five bounds), so the
// ones left are expired as before. Not a visitor as the anchor (its home
// shard expires it), nor a match function's pool (its call takes the
// turn, callFunction).
func (r *runner) matchDue(ctx context.Context, p *pool.Pool, now time.Time) {
	if !r.builtIn(p) {
		return
	}
	tooLate := time.Duration(p.Mode().MaxWait) + dueMatchFor
	for _, e := range p.Due(now) {
		if r.committing+len(r.forming) >= maxInFlight {
			return
		}
		if !e.Visitor && p.Contains(e) && e.Waited(now) < tooLate {
			r.tryMatch(ctx, p, e, now)
		}
	}
}

// dueMatchFor is how long past its max wait a ticket is still tried for
// a match before the sweep expires it (matchDue): above the claims
// outages the chaos runs saw after a NATS server's restart (10-25 s).
const dueMatchFor = 30 * time.Second

// sweep puts a reloaded rule set in force, tries the tickets due to
// expire once more for a match (matchDue) and expires the rest, retries
// the oldest tickets and others in turn with their widened windows (pool.Sweep),
// offers tickets to other shards, and retries unpublished matches. What it leaves running (match-function
// calls, queue-figure writes) runs on calls, which ends with the runner.
func (r *runner) sweep(ctx, calls context.Context, now time.Time) {
	r.syncRules()
	r.retryUnpublished(ctx)
	r.ended.prune(now)
	r.copies.matched.prune(now)
	r.undone.prune(now) // a match formed again after, its commit learns it again
	r.checkCopiesAgain(ctx)
	total := 0
	defer func() { r.held.Store(int64(total)) }()
	r.offerDue(ctx, now)
	r.fillBackfills(ctx, now)
	for name, p := range r.pools {
		mode := p.Mode()
		r.matchDue(ctx, p, now)
		var due []*pool.Entry
		p.Expired(now, func(e *pool.Entry) { due = append(due, e) })
		r.ends.expireAll(ctx, due, mode)
		if r.builtIn(p) { // else the match function's call takes its turn (callFunction)
			for _, a := range p.Sweep(r.anchors) {
				if p.Contains(a) {
					r.tryMatch(ctx, p, a, now)
				}
			}
		}
		r.callFunction(calls, p, now)
		r.met.waiting.WithLabelValues(r.shard.String(), name).Set(float64(p.Len()))
		total += p.Len()
	}
	r.stats.report(calls, r.pools, now)
}
