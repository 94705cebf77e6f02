// Package shard decides which shards a matcher worker owns.
//
// Mechanism: ownership leases in a KV bucket. Every worker beats into the
// workers bucket each LeaseRenew; a worker whose last beat is older than
// WorkerTTL is dead. The shards are spread over the live workers by
// rendezvous hashing (each shard goes to the worker with the highest
// hash(shard, worker)), so every worker computes the same spread and a
// join or a death moves only the shards that must move. A worker consumes
// a shard only while it holds the shard's lease: a key in the leases
// bucket naming it as owner until a time, created or taken over by
// compare-and-set on the key's revision, and renewed every LeaseRenew. A
// worker releases a shard it should no longer own (it stops consuming
// first, then deletes the lease), and takes over a lease whose owner let it
// lapse.
//
// Bound: a worker that dies stops beating and renewing; after WorkerTTL
// the others leave it out of the spread, and its leases have lapsed by
// then (LeaseTTL), so its shards are consumed again within the takeover
// bound stated at events.WorkerTTL. A clean stop hands the shards over at
// once. A worker cut off from NATS (its connection or its node) is such a
// dead worker to the others, and it stops consuming before its leases
// lapse (it gives a shard up when it cannot renew it in time, see renew),
// as long as the streams of the workers and leases buckets have a leader
// on the others' side. When the cut node led one, a new leader is elected
// first: 4 to 9 s of Raft election timeout in nats-server 2.15, so a
// takeover then takes up to about that much longer. That case is not
// measured here: TestTakeoverWhenTheOwnersNodeIsCut keeps the leaders off
// the cut node.
//
// Partitions: every call has its own deadline (LeaseCallTimeout), the
// shards' lease steps run side by side, and a shard whose last step is
// still running (a runner slow to stop) is left out of the next, so no
// call held on a cut route, and no slow shard, delays the others. The
// reads that decide ownership go to the stream leader
// (events.LeaderGets): a replica behind a cut would answer with beats and
// leases seconds old, or not at all. The worker list is read again each
// step, but a worker listed before is still judged by its
// beat when the listing fails (a listing needs a consumer, and so the
// JetStream meta leader; a read of a beat does not).
//
// A worker cut from what it receives only (its writes still reach NATS,
// no answer or delivery comes back) would keep beating and renewing, its
// writes landing unanswered: to the others it is alive and holds its
// leases, while it receives no tickets. So a beat or lease write without
// an answer makes the worker quiet: it writes nothing until a read is
// answered (Manager.quiet). Its beat then goes stale and its leases lapse
// as a dead worker's, one round later than a dead worker's at most (the
// writes of that round landed); a slow write on a healthy machine costs
// one read before the next write (TestSlowWriteCostsAtMostARound).
//
// Two workers may briefly both believe they own a shard (a paused worker
// that wakes up before its renewal fails); the claims bucket keeps every
// ticket in at most one match regardless. Clocks of the workers are
// assumed to agree within events.LeaseClockSkew.
package shard

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Owner is what the manager drives: Acquire starts consuming a shard,
// Release stops and returns once nothing of the shard is held any more.
// Calls for different shards may run at the same time; calls for one
// shard never overlap (a shard's lease step runs alone, Manager.step).
type Owner interface {
	Acquire(ctx context.Context, s events.Shard)
	Release(s events.Shard)
}

// Manager keeps this worker's beat and leases.
type Manager struct {
	id      string
	shards  []events.Shard
	workers jetstream.KeyValue
	leases  jetstream.KeyValue
	owner   Owner
	log     *slog.Logger
	now     func() time.Time
	// timeout bounds each call to the buckets (events.LeaseCallTimeout).
	timeout time.Duration

	mu   sync.Mutex
	held map[events.Shard]ourLease
	// busy are the shards whose lease step is still running.
	busy map[events.Shard]bool
	// out are the shards the last view of the live workers gave to
	// another worker.
	out map[events.Shard]bool
	// known are the other workers of the last listing that succeeded;
	// nil before the first.
	known map[string]bool
	// quiet is set when a beat or lease write got no answer: it may have
	// landed all the same (a worker cut from what it receives: its writes
	// reach NATS, their answers do not come back), and a worker that
	// kept writing would look alive, with valid leases, to the others
	// while it receives no tickets. So it writes nothing more (no beat,
	// no renewal, no acquire) until a read is answered (hear), and its
	// beat goes stale and its leases lapse. failures counts such writes:
	// only a read sent after the last of them ends quiet.
	quiet    bool
	failures uint64
	steps    sync.WaitGroup
}

// New binds to the buckets.
func New(ctx context.Context, js jetstream.JetStream, subj events.Subjects, id string, shards []events.Shard, owner Owner, log *slog.Logger) (*Manager, error) {
	workers, err := events.BindLeaderGets(ctx, js, subj.WorkersBucket())
	if err != nil {
		return nil, fmt.Errorf("workers bucket: %w", err)
	}
	leases, err := events.BindLeaderGets(ctx, js, subj.LeasesBucket())
	if err != nil {
		return nil, fmt.Errorf("leases bucket: %w", err)
	}
	return &Manager{
		id: id, shards: shards, workers: workers, leases: leases, owner: owner, log: log, now: time.Now,
		timeout: events.LeaseCallTimeout,
		held:    map[events.Shard]ourLease{}, busy: map[events.Shard]bool{}, out: map[events.Shard]bool{},
	}, nil
}

// Run beats, balances and renews every LeaseRenew until ctx ends, then
// hands every shard back.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(events.LeaseRenew)
	defer t.Stop()
	for {
		m.step(ctx)
		select {
		case <-ctx.Done():
			m.steps.Wait()
			m.stop()
			return nil
		case <-t.C:
		}
	}
}

// call is the context of one call to a bucket.
func (m *Manager) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, m.timeout)
}

// step renews or gives back what it holds, beats, reads who is alive and
// takes what is its own now; it does not wait for the lease steps (see the
// package comment). Renewals go first, side by side with the beat and the
// reads, and wait for none of them: an owner cut off gives its shards up,
// and stops consuming, before its leases lapse (renew). So a shard
// that the last view gave to another worker is given back at this step,
// one step after that view.
func (m *Manager) step(ctx context.Context) {
	now := m.now()
	m.mu.Lock()
	for s := range m.held {
		switch {
		case m.busy[s]:
			m.log.Debug("lease step still running", "shard", s.String())
		case m.out[s]:
			m.start(ctx, s, func(ctx context.Context) { m.release(ctx, s) })
		default:
			m.start(ctx, s, func(ctx context.Context) { m.renew(ctx, s) })
		}
	}
	m.mu.Unlock()
	if !m.hear(ctx) {
		// Quiet: no beat, no view, nothing taken. The renewals just
		// started read before they write, and give the shards up in time.
		m.log.Warn("quiet: no answer from NATS since a write got none")
		m.mu.Lock()
		clear(m.out)
		m.mu.Unlock()
		return
	}
	var beat sync.WaitGroup
	beat.Go(func() {
		cctx, cancel := m.call(ctx)
		defer cancel()
		_, err := m.workers.Put(cctx, m.id, []byte(strconv.FormatInt(now.UnixMilli(), 10)))
		if m.wrote(err); err != nil {
			m.log.Warn("heartbeat", "err", err)
		}
	})
	live, err := m.live(ctx, now)
	beat.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.out)
	if err != nil {
		// Without a view of the others, keep what we hold (renewing it)
		// and take nothing new.
		m.log.Warn("list workers", "err", err)
		return
	}
	for _, s := range m.shards {
		_, holding := m.held[s]
		mine := Owns(s, m.id, live)
		m.out[s] = !mine
		if !holding && mine && !m.busy[s] {
			m.start(ctx, s, func(ctx context.Context) { m.acquire(ctx, s, now) })
		}
	}
}

// start runs one lease step of s in the background, marking s busy until
// it ends. The caller holds mu.
func (m *Manager) start(ctx context.Context, s events.Shard, f func(context.Context)) {
	m.busy[s] = true
	m.steps.Go(func() {
		f(ctx)
		m.mu.Lock()
		delete(m.busy, s)
		m.mu.Unlock()
	})
}

// wrote notes the outcome of a beat or lease write; one without an answer
// makes the worker quiet.
func (m *Manager) wrote(err error) {
	if answered(err) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.quiet = true
	m.failures++
}

// reading is to be called before a read, and heard with the read's
// outcome: it reports whether NATS answered, and ends quiet when no
// write went unanswered since the read was sent (an answer received
// after that failure shows the worker hears NATS again).
func (m *Manager) reading() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failures
}

func (m *Manager) heard(since uint64, err error) bool {
	if !answered(err) {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failures == since {
		m.quiet = false
	}
	return true
}

func (m *Manager) isQuiet() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.quiet
}

// hear reports whether this worker may write: it is not quiet, or a
// leader read of its own beat is answered now.
func (m *Manager) hear(ctx context.Context) bool {
	m.mu.Lock()
	quiet, since := m.quiet, m.failures
	m.mu.Unlock()
	if !quiet {
		return true
	}
	cctx, cancel := m.call(ctx)
	defer cancel()
	_, err := m.workers.Get(cctx, m.id)
	return m.heard(since, err)
}

// answered reports whether err (nil included) is NATS's answer to a
// call, rather than no answer (a timeout, a connection lost), after
// which a write may have landed or not.
func answered(err error) bool {
	var api *jetstream.APIError // leader reads' too (events.LeaderGets)
	return err == nil || errors.Is(err, jetstream.ErrKeyNotFound) ||
		errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) ||
		errors.Is(err, nats.ErrNoResponders) || errors.As(err, &api)
}

// Owns reports whether worker is the rendezvous choice for s among live.
func Owns(s events.Shard, worker string, live []string) bool {
	best, bestScore := "", uint64(0)
	for _, w := range live {
		h := fnv.New64a()
		h.Write([]byte(s.String()))
		h.Write([]byte{0})
		h.Write([]byte(w))
		if sc := h.Sum64(); best == "" || sc > bestScore || sc == bestScore && w < best {
			best, bestScore = w, sc
		}
	}
	return best == worker
}
