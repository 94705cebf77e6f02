package chaos

// Takeover times: the harness watches the shard leases and, for each cut
// that put matchers on the cut side, says how long each of their shards
// took to get another owner. The time of a lease change is its entry's
// stored time, set by the stream's leader, not when the watch heard of it:
// the harness's own connection may be on the node cut off and hear late.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// leaseChange is one write (or delete: no owner) of a shard's lease.
type leaseChange struct {
	shard, owner string
	at           time.Time
}

// leaseLog is every lease change the watch saw.
type leaseLog struct {
	w       jetstream.KeyWatcher
	mu      sync.Mutex
	changes []leaseChange
}

func watchLeases(ctx context.Context, js jetstream.JetStream) (*leaseLog, error) {
	kv, err := js.KeyValue(ctx, events.Subjects{}.LeasesBucket())
	if err != nil {
		return nil, fmt.Errorf("leases bucket: %w", err)
	}
	w, err := kv.WatchAll(context.Background())
	if err != nil {
		return nil, fmt.Errorf("watch the leases: %w", err)
	}
	l := &leaseLog{w: w}
	go func() {
		for e := range w.Updates() {
			if e == nil {
				continue // the end of the values there were at the start
			}
			var v struct {
				Owner string `json:"owner"`
			}
			if e.Operation() == jetstream.KeyValuePut {
				_ = json.Unmarshal(e.Value(), &v) // a value not understood reads as no owner
			}
			l.mu.Lock()
			l.changes = append(l.changes, leaseChange{shard: e.Key(), owner: v.Owner, at: e.Created()})
			l.mu.Unlock()
		}
	}()
	return l, nil
}

func (l *leaseLog) close() { _ = l.w.Stop() }

// sorted are the changes in the order they were stored.
func (l *leaseLog) sorted() []leaseChange {
	l.mu.Lock()
	out := slices.Clone(l.changes)
	l.mu.Unlock()
	slices.SortStableFunc(out, func(a, b leaseChange) int { return a.at.Compare(b.at) })
	return out
}

// Takeover is how long one shard of a matcher on the cut side took to
// get another owner after the cut began.
type Takeover struct {
	Partition string `json:"partition"`
	Shard     string `json:"shard"`
	From      string `json:"from"`
	To        string `json:"to,omitempty"`
	// Seconds from the cut to the new owner's lease; 0 with To empty: the
	// shard did not move during the cut (nor up to 30 s after its heal).
	Seconds float64 `json:"seconds,omitempty"`
	// AfterHeal: it moved only once the cut was healed.
	AfterHeal bool `json:"after_heal,omitempty"`
	// CutSeconds is how long the cut lasted.
	CutSeconds float64 `json:"cut_seconds"`
}

// takeovers lists, for each partition with matchers on the cut side, each
// of their shards (owners at the cut) and when it moved.
func takeovers(parts []partition, changes []leaseChange) []Takeover {
	var out []Takeover
	for _, p := range parts {
		owners := map[string]string{}
		for _, c := range changes {
			if !c.at.After(p.start) {
				owners[c.shard] = c.owner
			}
		}
		for _, shard := range keys(owners) {
			from := owners[shard]
			if from == "" || !slices.Contains(p.workers, from) {
				continue
			}
			t := Takeover{Partition: p.kind + " " + p.what, Shard: shard, From: from, CutSeconds: p.end.Sub(p.start).Seconds()}
			for _, c := range changes {
				if c.shard == shard && c.at.After(p.start) && c.at.Before(p.end.Add(30*time.Second)) && c.owner != "" && c.owner != from {
					t.To, t.Seconds, t.AfterHeal = c.owner, c.at.Sub(p.start).Seconds(), c.at.After(p.end)
					break
				}
			}
			out = append(out, t)
		}
	}
	return out
}
