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
// then (LeaseTTL), so its shards are consumed again within about
// WorkerTTL + LeaseRenew (4 s with the defaults). A clean stop hands the
// shards over at once. Two workers may briefly both believe they own a
// shard (a paused worker that wakes up before its renewal fails); the
// claims bucket keeps every ticket in at most one match regardless.
// Clocks of the workers are assumed to agree within a second.
package shard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Owner is what the manager drives: Acquire starts consuming a shard,
// Release stops and returns once nothing of the shard is held any more.
type Owner interface {
	Acquire(ctx context.Context, s events.Shard)
	Release(s events.Shard)
}

type lease struct {
	Owner string `json:"owner"`
	// Until is when the lease lapses if not renewed (Unix milliseconds).
	Until int64 `json:"until"`
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

	held map[events.Shard]uint64 // shard -> lease revision
}

// New binds to the buckets.
func New(ctx context.Context, js jetstream.JetStream, subj events.Subjects, id string, shards []events.Shard, owner Owner, log *slog.Logger) (*Manager, error) {
	workers, err := js.KeyValue(ctx, subj.WorkersBucket())
	if err != nil {
		return nil, fmt.Errorf("workers bucket: %w", err)
	}
	leases, err := js.KeyValue(ctx, subj.LeasesBucket())
	if err != nil {
		return nil, fmt.Errorf("leases bucket: %w", err)
	}
	return &Manager{id: id, shards: shards, workers: workers, leases: leases, owner: owner, log: log, now: time.Now, held: map[events.Shard]uint64{}}, nil
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
			m.stop()
			return nil
		case <-t.C:
		}
	}
}

func (m *Manager) step(ctx context.Context) {
	now := m.now()
	if _, err := m.workers.Put(ctx, m.id, []byte(strconv.FormatInt(now.UnixMilli(), 10))); err != nil {
		m.log.Warn("heartbeat", "err", err)
	}
	live, err := m.live(ctx, now)
	if err != nil {
		// Without a view of the others, keep what we hold (renewing it)
		// and take nothing new.
		m.log.Warn("list workers", "err", err)
		live = nil
	}
	for _, s := range m.shards {
		_, holding := m.held[s]
		mine := live != nil && Owns(s, m.id, live)
		switch {
		case holding && !mine && live != nil:
			m.release(ctx, s)
		case holding:
			m.renew(ctx, s, now)
		case mine:
			m.acquire(ctx, s, now)
		}
	}
}

// live returns the workers that beat within WorkerTTL, this one included.
func (m *Manager) live(ctx context.Context, now time.Time) ([]string, error) {
	keys, err := m.workers.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{m.id}
	for k := range keys.Keys() {
		if k == m.id {
			continue
		}
		e, err := m.workers.Get(ctx, k)
		if err != nil {
			continue // gone between the listing and the read
		}
		ms, err := strconv.ParseInt(string(e.Value()), 10, 64)
		if err == nil && now.Sub(time.UnixMilli(ms)) < events.WorkerTTL {
			out = append(out, k)
		}
	}
	return out, nil
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

func (m *Manager) encode(now time.Time) []byte {
	b, _ := json.Marshal(lease{Owner: m.id, Until: now.Add(events.LeaseTTL).UnixMilli()}) // always encodes
	return b
}

func (m *Manager) acquire(ctx context.Context, s events.Shard, now time.Time) {
	key := s.String()
	e, err := m.leases.Get(ctx, key)
	var rev uint64
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rev, err = m.leases.Create(ctx, key, m.encode(now))
	case err != nil:
	default:
		var l lease
		_ = json.Unmarshal(e.Value(), &l)
		if l.Owner != m.id && now.UnixMilli() < l.Until {
			return // still the other owner's; it lets go once it sees us
		}
		rev, err = m.leases.Update(ctx, key, m.encode(now), e.Revision())
	}
	if err != nil {
		m.log.Debug("lease not taken", "shard", key, "err", err)
		return
	}
	m.held[s] = rev
	m.log.Info("shard acquired", "shard", key, "worker", m.id)
	m.owner.Acquire(ctx, s)
}

func (m *Manager) renew(ctx context.Context, s events.Shard, now time.Time) {
	rev, err := m.leases.Update(ctx, s.String(), m.encode(now), m.held[s])
	if err != nil {
		// Someone took it (we were too slow) or NATS is away: stop
		// consuming at once; the lease decides who may.
		m.log.Warn("lease lost", "shard", s.String(), "err", err)
		delete(m.held, s)
		m.owner.Release(s)
		return
	}
	m.held[s] = rev
}

func (m *Manager) release(ctx context.Context, s events.Shard) {
	m.owner.Release(s)
	if err := m.leases.Delete(ctx, s.String(), jetstream.LastRevision(m.held[s])); err != nil {
		m.log.Debug("lease delete", "shard", s.String(), "err", err)
	}
	delete(m.held, s)
	m.log.Info("shard released", "shard", s.String(), "worker", m.id)
}

// stop hands every shard back and leaves the worker list, so that the
// others take over at once rather than after the TTLs.
func (m *Manager) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for s := range m.held {
		m.release(ctx, s)
	}
	_ = m.workers.Delete(ctx, m.id)
}
