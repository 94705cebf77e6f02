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
	Kind      string `json:"kind"`
	Shard     string `json:"shard"`
	From      string `json:"from"`
	To        string `json:"to,omitempty"`
	// Seconds from the cut to the new owner's lease; 0 with To empty: the
	// shard did not move during the cut (nor within healGrace of its heal).
	Seconds float64 `json:"seconds,omitempty"`
	// AfterHeal: it moved within healGrace after the heal.
	AfterHeal bool `json:"after_heal,omitempty"`
	// CutSeconds is how long the cut lasted.
	CutSeconds float64 `json:"cut_seconds"`
}

// healGrace is how long after a heal a move still counts as the cut's
// takeover (a lease that lapsed during the cut, taken just after). A later
// move is not the cut's: with a fault every second, it is another fault's,
// or the owners rebalancing once the cut side is back.
const healGrace = time.Second

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
			t := Takeover{Partition: p.kind + " " + p.what, Kind: p.kind, Shard: shard, From: from, CutSeconds: p.end.Sub(p.start).Seconds()}
			for _, c := range changes {
				if c.shard == shard && c.at.After(p.start) && c.at.Before(p.end.Add(healGrace)) && c.owner != "" && c.owner != from {
					t.To, t.Seconds, t.AfterHeal = c.owner, c.at.Sub(p.start).Seconds(), c.at.After(p.end)
					break
				}
			}
			out = append(out, t)
		}
	}
	return out
}

// TakeoverStat sums up the takeovers of one kind of cut.
type TakeoverStat struct {
	Kind string `json:"kind"`
	// Shards on the cut side, and how many moved during their cut.
	Shards int `json:"shards"`
	Moved  int `json:"moved"`
	// MedianSeconds and MaxSeconds of the moves.
	MedianSeconds float64 `json:"median_seconds,omitempty"`
	MaxSeconds    float64 `json:"max_seconds,omitempty"`
	// BoundSeconds is the stated bound for this kind (none for an
	// asymmetric split, where an owner that still reaches a majority
	// rightly keeps its shards). OverBound counts the shards that moved
	// later than it, or not at all though their cut outlasted it.
	BoundSeconds float64 `json:"bound_seconds,omitempty"`
	OverBound    int     `json:"over_bound"`
}

// takeoverBounds are the stated bounds by kind of cut: a node cut may take
// a stream leader with it; a service cut one way has its last beat land
// up to LeaseRenew after the cut (package events, WorkerTTL).
var takeoverBounds = map[string]time.Duration{
	"cut_nats":           events.TakeoverBoundElecting,
	"cut_service":        events.TakeoverBound,
	"cut_service_oneway": events.TakeoverBound + events.LeaseRenew,
}

// summarize sums up takeovers by kind of cut, in partitionKinds' order.
func summarize(ts []Takeover) []TakeoverStat {
	var out []TakeoverStat
	for _, kind := range partitionKinds {
		st := TakeoverStat{Kind: kind, BoundSeconds: takeoverBounds[kind].Seconds()}
		var secs []float64
		for _, t := range ts {
			if t.Kind != kind {
				continue
			}
			st.Shards++
			if t.To != "" {
				secs = append(secs, t.Seconds)
			}
			over := t.To != "" && t.Seconds > st.BoundSeconds || t.To == "" && t.CutSeconds > st.BoundSeconds
			if st.BoundSeconds > 0 && over {
				st.OverBound++
			}
		}
		if st.Shards == 0 {
			continue
		}
		slices.Sort(secs)
		st.Moved = len(secs)
		if len(secs) > 0 {
			st.MedianSeconds, st.MaxSeconds = secs[len(secs)/2], secs[len(secs)-1]
		}
		out = append(out, st)
	}
	return out
}
