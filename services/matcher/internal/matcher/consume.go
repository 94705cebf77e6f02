package matcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// The shard consumers' timings.
const (
	// pullExpiry is how long one pull request of a shard consumer lives
	// at the server. An owner cut off (its connection hangs, not closed)
	// keeps taking the shard's messages on the requests it made before
	// the cut until they expire, and what it takes after the next
	// owner's reset waits out the pool's AckWait (an hour). So they must
	// expire before the soonest takeover, LeaseTTL - LeaseRenew after the
	// cut (the owner renewed up to LeaseRenew before it): one second, the
	// least nats.go takes. Idle heartbeats come every half of it, so a
	// consumer whose leader is gone is heard of within a second. An idle
	// shard costs a pull request per consumer a second. The consumers
	// refuse longer pulls (events.PoolMaxPullExpiry).
	pullExpiry = events.PoolPullExpiry
	// resetGap is the least time between two resets of one consumer:
	// each redelivers everything the shard holds unacked (answered as
	// holds), so a leader that keeps changing costs a round per gap.
	resetGap = 5 * time.Second
	// silenceReset is how long missed heartbeats must go on before they
	// alone reset a consumer (a leader lost and elected anew sends no
	// "leadership change"): a loaded server missing one now and then
	// costs nothing. Then at most once per silenceResetGap.
	silenceReset    = events.LeaseTTL
	silenceResetGap = 30 * time.Second
	// missGap: while nothing comes nats.go reports a heartbeat missed
	// every pullExpiry (twice the heartbeat); a longer gap between two
	// means something came between them.
	missGap = 2 * pullExpiry
	// retryGap is how soon a reset or a start that failed (no leader, NATS
	// away) is tried again.
	retryGap = time.Second
	// drainWait bounds how long a stopping runner waits for its consumers'
	// buffered messages to be nakked. On a connection that hangs a drain
	// waits for the server's answer to a flush (10 s); the naks are lost
	// there anyway, and what the drain delivers later is nakked all the
	// same (feed.handle).
	drainWait = time.Second
	// quietWait bounds how long a reset waits for the consumer's pull
	// requests to end (quiet): every one made before the feed stopped
	// its consume has expired by then (pullExpiry), with a margin for the
	// stop to reach the consumer's leader. What still waits is another
	// client's, which no wait ends. quietPoll is how often it asks.
	quietWait = pullExpiry + 500*time.Millisecond
	quietPoll = 50 * time.Millisecond
)

// feed is a runner's three consumers of its shard (its tickets, its
// visitors, its rooms' backfill requests), which hand what they deliver
// to the runner's inbox. A delivery, or an answer to one (a nak), can be
// lost without a trace: while a consumer has no leader (the server drops
// acks no leader takes) or across a reconnect. The server then counts the
// message delivered and gives it again only after the pool's AckWait, an
// hour, and the owner, keeping its shard, never resets the consumer as a
// new owner would. So the feed resets a consumer (watch) after a
// reconnect, a leader change or its consumer deleted, and after a long
// silence (silenceReset: a leader lost and elected anew says nothing
// else): everything unacked comes back at once, and the runner answers
// what it holds already as redeliveries (holds). Resetting, rather than
// retrying tickets in the runner, covers a lost delivery as well as a
// lost nak, whichever part sent the nak.
//
// A reset costs: everything unacked is delivered again (first
// deliveries again: their delivery sequences start over), and the server
// drops an ack that reaches it between the reset and the message's new
// delivery, and a nak on a delivery from before the reset whose delivery
// sequence the new ones have not reached yet (one they have reached
// counts against the new delivery: one delivery more); holds
// answers each new delivery (a ticket in a commit in flight is nakked,
// to come back once the commit settles), and claims absorb what is taken
// in twice. Hence no reset for a heartbeat missed now and then, nor one
// into a connection that does not answer (resetConsumer), to reach the
// server at the heal.
//
// And no reset while a pull request of the consumer waits at its leader
// (quiet). nats-server 2.15 applies a reset of a replicated consumer
// once its Raft group commits it, and goes on from the old position
// meanwhile: a delivery in that window, or a nak with a delay (a new
// delivery time, proposed as a delivery is), leaves the consumer's
// stored state claiming delivered every message below it, and what the
// reset then gives again is not counted pending. At the consumer's next
// leader change, or its replicas' periodic check, the server takes those
// messages for acked and removes them from the work-queue stream:
// tickets lost without an ack, a trace or an outcome (chaos run C2,
// BENCHMARKS "Nineteenth round"; TestAResetAmidDeliveriesLosesNoTicket).
// With no pull request waiting nothing is delivered until the reset is
// applied and answered, and the matcher's naks carry no delay (nakDelay).
// Acks, terms and plain naks propose nothing that moves the delivered
// position.
type feed struct {
	js      jetstream.JetStream
	nc      *nats.Conn
	specs   []consumerSpec
	timeout time.Duration
	log     *slog.Logger
	inbox   chan<- jetstream.Msg
	stopC   <-chan struct{}
	now     func() time.Time // the clock of silences (a test sets it)

	mu       sync.Mutex
	ccs      []jetstream.ConsumeContext // by spec; nil until consumed
	silences []silence                  // by spec (consumeErr)

	// suspect has bit i set while consumer i may have lost a delivery or
	// an answer since its last reset; wake tells watch.
	suspect atomic.Uint32
	wake    chan struct{}
	// tries counts the resets tried, resets those done by spec (tests
	// wait on them).
	tries   atomic.Int64
	resets  [3]atomic.Int64
	watched chan struct{} // closed when watch returns, or start fails
	// sealFloor is the tickets stream's last sequence when the shard's
	// tickets consumer was last reset: a ticket at or below it may have
	// been delivered before (to a previous owner; a reset counts
	// deliveries from one again), so its seal is not trusted (takenFirst).
	sealFloor atomic.Uint64

	// gate, closed, stops the consume callbacks handing messages to the
	// inbox: once the runner stopped, they nak what they get.
	gate   sync.RWMutex
	closed bool
}

// silence is a consumer's missed heartbeats: since it began, when the
// last was missed, when one last reset the consumer, and when the
// consumer last delivered.
type silence struct{ since, last, reset, heard time.Time }

type consumerSpec struct{ stream, name string }

func newFeed(r *runner, nc *nats.Conn, timeout time.Duration) *feed {
	s := r.shard
	return &feed{
		js: r.js, nc: nc, timeout: timeout, log: r.log, inbox: r.inbox, stopC: r.stopC,
		specs: []consumerSpec{
			{r.subj.TicketsStream(), events.ShardConsumer(s.Region, s.Tier)},
			{r.subj.OffersStream(), events.OfferConsumer(s.Region, s.Tier)},
			{r.subj.BackfillsStream(), events.BackfillConsumer(s.Region, s.Tier)},
		},
		ccs: make([]jetstream.ConsumeContext, 3), silences: make([]silence, 3),
		wake: make(chan struct{}, 1), watched: make(chan struct{}), now: time.Now,
	}
}

var errStopped = errors.New("stopped")

// start resets the shard's consumers, so that what a previous owner held
// unacked comes back at once, and consumes them. It retries every
// retryGap until it works or the runner is stopped (ctx ends with it): a
// held shard is never left unconsumed for good, and a stopped runner
// starts no consumer. Once it failed no watch runs (watched is closed).
func (f *feed) start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			close(f.watched)
		}
	}()
	for {
		var failed error
		for i := range f.specs {
			if f.ccs[i] != nil {
				continue
			}
			if f.stopped() {
				return errStopped
			}
			cc, cerr := f.consume(ctx, i)
			if cerr != nil {
				failed = cerr
				break
			}
			f.mu.Lock()
			f.ccs[i] = cc
			f.mu.Unlock()
		}
		if failed == nil {
			f.log.Info("consuming shard")
			return nil
		}
		f.log.Warn("start shard; retrying", "err", failed)
		select {
		case <-f.stopC:
			return errStopped
		case <-time.After(retryGap):
		}
	}
}

func (f *feed) stopped() bool {
	select {
	case <-f.stopC:
		return true
	default:
		return false
	}
}

// consume resets consumer i, once no pull request waits on it (quiet),
// and consumes it. Its last consume, if any, is stopped.
func (f *feed) consume(ctx context.Context, i int) (jetstream.ConsumeContext, error) {
	cons, err := f.quiet(ctx, i)
	if err != nil {
		return nil, err
	}
	c := f.specs[i]
	cctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if i == 0 { // the tickets consumer (newFeed)
		st, err := f.js.Stream(cctx, c.stream)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", c.stream, err)
		}
		f.sealFloor.Store(max(f.sealFloor.Load(), st.CachedInfo().State.LastSeq))
	}
	if _, err := f.js.ResetConsumer(cctx, c.stream, c.name); err != nil {
		return nil, fmt.Errorf("reset %s: %w", c.name, err)
	}
	f.resets[i].Add(1)
	return cons.Consume(func(msg jetstream.Msg) { f.heard(i); f.handle(msg) },
		jetstream.PullMaxMessages(1024), jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { f.consumeErr(i, err) }))
}

// consumeErr marks consumer i suspect after an error that may have lost
// a delivery or an answer: at once after a leader change or its consumer
// gone (or refusing its requests: its consume ends), and after missed
// heartbeats only once the silence is long (missed).
func (f *feed) consumeErr(i int, err error) {
	name := f.specs[i].name
	switch {
	case errors.Is(err, jetstream.ErrNoHeartbeat):
		if !f.missed(i) {
			f.log.Debug("shard consume: heartbeat missed", "consumer", name)
			return
		}
	case errors.Is(err, jetstream.ErrConsumerLeadershipChanged), errors.Is(err, jetstream.ErrConsumerDeleted),
		errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrBadRequest):
	default:
		f.log.Warn("shard consume", "consumer", name, "err", err)
		return
	}
	f.log.Warn("shard consume; resetting the consumer", "consumer", name, "err", err)
	f.flag(1 << i)
}

// heard notes that consumer i delivered: a silence, if any, is over.
func (f *feed) heard(i int) {
	now := f.now()
	f.mu.Lock()
	f.silences[i].heard = now
	f.mu.Unlock()
}

// missed counts a missed heartbeat of consumer i and reports whether its
// silence calls for a reset: silent for silenceReset, and no such reset
// within silenceResetGap.
func (f *feed) missed(i int) bool {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &f.silences[i]
	if s.last.IsZero() || now.Sub(s.last) > missGap || s.heard.After(s.last) {
		// A new silence: it began when the heartbeat was due, twice the
		// heartbeat (pullExpiry) after the last thing heard.
		s.since = now.Add(-pullExpiry)
	}
	s.last = now
	if now.Sub(s.since) < silenceReset || (!s.reset.IsZero() && now.Sub(s.reset) < silenceResetGap) {
		return false
	}
	s.reset = now
	return true
}

// handle hands a delivery to the runner, or naks it (the next owner
// takes it) once the runner is stopping.
func (f *feed) handle(msg jetstream.Msg) {
	f.gate.RLock()
	defer f.gate.RUnlock()
	if f.closed {
		_ = msg.Nak()
		return
	}
	select {
	case f.inbox <- msg:
	case <-f.stopC:
		_ = msg.Nak()
	}
}
