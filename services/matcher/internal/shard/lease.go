package shard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// The lease steps of one shard. Each runs alone for its shard (Manager.step
// marks it busy) and side by side with the other shards'; each call to the
// leases bucket has its own deadline (Manager.call).

type lease struct {
	Owner string `json:"owner"`
	// Until is when the lease lapses if not renewed (Unix milliseconds).
	Until int64 `json:"until"`
}

// ourLease is a lease this worker holds: the revision it wrote last, and
// the Until it wrote then.
type ourLease struct {
	rev   uint64
	until time.Time
}

// encode is this worker's lease written at now, and its Until.
func (m *Manager) encode(now time.Time) ([]byte, time.Time) {
	until := time.UnixMilli(now.Add(events.LeaseTTL).UnixMilli())
	b, _ := json.Marshal(lease{Owner: m.id, Until: until.UnixMilli()}) // always encodes
	return b, until
}

// acquire takes s's lease if nobody holds it, or its holder let it lapse,
// and then starts consuming s. A write that timed out may have taken the
// lease all the same: the next step that hears NATS reads it as ours and
// takes it again.
func (m *Manager) acquire(ctx context.Context, s events.Shard, now time.Time) {
	key := s.String()
	gctx, cancel := m.call(ctx)
	since := m.reading()
	e, err := m.leases.Get(gctx, key)
	cancel()
	m.heard(since, err)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		m.log.Debug("lease not read", "shard", key, "err", err)
		return
	}
	if m.isQuiet() {
		return // a write of this step got no answer: write nothing more
	}
	wctx, cancel := m.call(ctx)
	defer cancel()
	value, until := m.encode(now)
	var rev uint64
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rev, err = m.leases.Create(wctx, key, value)
	default:
		var l lease
		_ = json.Unmarshal(e.Value(), &l)
		if l.Owner != m.id && now.UnixMilli() < l.Until {
			return // still the other owner's; it lets go once it sees us
		}
		rev, err = m.leases.Update(wctx, key, value, e.Revision())
	}
	if m.wrote(err); err != nil {
		m.log.Debug("lease not taken", "shard", key, "err", err)
		return
	}
	m.mu.Lock()
	m.held[s] = ourLease{rev: rev, until: until}
	m.mu.Unlock()
	m.log.Info("shard acquired", "shard", key, "worker", m.id)
	m.owner.Acquire(ctx, s)
}

// errTaken is a renewal that found the lease naming another owner, or
// gone.
var errTaken = errors.New("lease taken by another owner or deleted")

// renew writes s's lease again. It gives s up (stops consuming it) when
// the lease names another owner, or when it could not renew in time: by
// the Until it last wrote, less events.LeaseClockSkew, since from then a
// worker whose clock is ahead may take the lease over. A renewal that
// fails otherwise (a call timed out: NATS slow, or cut off) keeps s and
// is tried again every LeaseCallTimeout until then: giving s up at once
// would, under load, stop its runner (every ticket nakked), take s again
// the next step and admit every ticket again, over and over.
//
// It keeps at it itself, rather than leaving what is left to the next
// step: that step skips s while this renewal still runs (Manager.step),
// and the one after may come as late as the lease lapses, when another
// worker takes s over. So it returns only with the lease renewed or s
// given up, unless ctx ended (Run hands s back) or m.now says there is
// time left when the timers say there is none (a test's clock).
func (m *Manager) renew(ctx context.Context, s events.Shard) {
	m.mu.Lock()
	held := m.held[s]
	m.mu.Unlock()
	giveUp := held.until.Add(-events.LeaseClockSkew)
	// The attempts are timed by this machine's timers, up to giveUp by
	// m.now, the clock the leases are written in.
	end := time.Now().Add(giveUp.Sub(m.now()))
	err := fmt.Errorf("not renewed by %s", giveUp.Format(time.RFC3339Nano))
	for left := time.Until(end); left > 0 && ctx.Err() == nil; left = time.Until(end) {
		slot := min(m.timeout, left)
		pace := time.NewTimer(slot)
		var next ourLease
		next, err = m.renewOnce(ctx, s, held, slot)
		if err == nil {
			pace.Stop()
			m.mu.Lock()
			m.held[s] = next
			m.mu.Unlock()
			return
		}
		if errors.Is(err, errTaken) {
			pace.Stop()
			break
		}
		m.log.Debug("lease not renewed; trying again", "shard", s.String(), "err", err)
		// A call that failed at once (no responders) is tried again at
		// the end of its slot, not in a busy loop.
		select {
		case <-ctx.Done():
		case <-pace.C:
		}
		pace.Stop()
	}
	if !errors.Is(err, errTaken) && (ctx.Err() != nil || m.now().Before(giveUp)) {
		return
	}
	m.mu.Lock()
	delete(m.held, s)
	m.mu.Unlock()
	// The shard stays busy, out of the next steps, until its runner has
	// stopped.
	m.log.Warn("lease lost", "shard", s.String(), "err", err)
	m.owner.Release(s)
}

// renewOnce writes s's lease over held, all its calls within timeout.
// When the lease changed since held (a revision mismatch), it is read:
// one that still names this worker was written by an earlier renewal
// whose answer was lost (it timed out but was stored), and is adopted as
// held. A quiet worker (Manager.quiet) reads first and writes only once
// that read is answered: one slow write costs the next a read, while a
// worker that hears nothing writes nothing.
func (m *Manager) renewOnce(ctx context.Context, s events.Shard, held ourLease, timeout time.Duration) (ourLease, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if m.isQuiet() {
		cur, err := m.readLease(ctx, s)
		if err != nil || cur.rev != held.rev {
			return cur, err
		}
	}
	value, until := m.encode(m.now())
	rev, err := m.leases.Update(ctx, s.String(), value, held.rev)
	if m.wrote(err); err == nil {
		return ourLease{rev: rev, until: until}, nil
	}
	if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return held, err
	}
	return m.readLease(ctx, s)
}

// readLease reads s's lease from the leader: errTaken when it does not
// name this worker.
func (m *Manager) readLease(ctx context.Context, s events.Shard) (ourLease, error) {
	since := m.reading()
	e, err := m.leases.Get(ctx, s.String())
	m.heard(since, err)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ourLease{}, errTaken
	}
	if err != nil {
		return ourLease{}, fmt.Errorf("read lease: %w", err)
	}
	var l lease
	if json.Unmarshal(e.Value(), &l) != nil || l.Owner != m.id {
		return ourLease{}, fmt.Errorf("%w: %s", errTaken, e.Value())
	}
	return ourLease{rev: e.Revision(), until: time.UnixMilli(l.Until)}, nil
}

func (m *Manager) release(ctx context.Context, s events.Shard) {
	m.owner.Release(s)
	m.mu.Lock()
	rev := m.held[s].rev
	m.mu.Unlock()
	cctx, cancel := m.call(ctx)
	defer cancel()
	err := m.leases.Delete(cctx, s.String(), jetstream.LastRevision(rev))
	if m.wrote(err); err != nil {
		m.log.Debug("lease delete", "shard", s.String(), "err", err)
	}
	m.mu.Lock()
	delete(m.held, s)
	m.mu.Unlock()
	m.log.Info("shard released", "shard", s.String(), "worker", m.id)
}

// stop hands every shard back, side by side, and leaves the worker list,
// so that the others take over at once rather than after the TTLs. It
// runs once no lease step is running any more (Run).
func (m *Manager) stop() {
	ctx := context.Background()
	m.mu.Lock()
	held := make([]events.Shard, 0, len(m.held))
	for s := range m.held {
		held = append(held, s)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range held {
		wg.Go(func() { m.release(ctx, s) })
	}
	wg.Wait()
	cctx, cancel := m.call(ctx)
	defer cancel()
	_ = m.workers.Delete(cctx, m.id)
}
