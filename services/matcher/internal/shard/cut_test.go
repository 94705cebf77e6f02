package shard

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// spread waits until worker x holds its share of shards (split between
// workers x and y) and y the rest, and returns x's share and the shards y
// has started on while x still consumed them: two owners at once are what
// the leases are for, so a takeover test fails on any.
func spread(t *testing.T, ox, oy *owner, shards []events.Shard) (theirs []events.Shard, overlap func() []string) {
	t.Helper()
	for _, s := range shards {
		if Owns(s, "x", []string{"x", "y"}) {
			theirs = append(theirs, s)
		}
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		return len(theirs) > 0 && ox.holding(theirs...) == len(theirs) && oy.holding(shards...) == len(shards)-len(theirs)
	}, "shards not spread: x holds %d of its %d, y %d", ox.holding(theirs...), len(theirs), oy.holding(shards...))
	var mu sync.Mutex
	var both []string
	oy.mu.Lock()
	oy.onAcquire = func() {
		for _, s := range theirs {
			if oy.holding(s) == 1 && ox.holding(s) == 1 {
				mu.Lock()
				both = append(both, s.String())
				mu.Unlock()
			}
		}
	}
	oy.mu.Unlock()
	return theirs, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(both)
	}
}

// TestTakeoverWhenTheOwnersNodeIsCut: worker x is attached to node 3,
// worker y to node 1; node 3 is cut from the others (its routes hold
// bytes; x's connection to it stays up and says nothing). y takes x's
// shards once x's beat is older than WorkerTTL and its leases lapsed. The
// leaders of the workers and leases streams are kept off node 3. x stops
// consuming before y starts (its renewals fail fast, before its leases
// lapse). The test allows 20 s for the takeover and logs what it
// measured; the stated bound is events.TakeoverBound (6 s).
func TestTakeoverWhenTheOwnersNodeIsCut(t *testing.T) {
	takeoverAfterNodeCut(t, false, 20*time.Second)
}

// TestTakeoverWhenTheLeadersAreOnTheCutNode: as above, but the leaders
// of the workers and leases streams are on node 3, with x. Nodes 1 and 2
// elect new leaders first (NATS: an election timeout of 4-9 s after the
// last heartbeat), then y takes over as above: the stated bound is
// events.TakeoverBoundElecting (15 s). The test allows 40 s and logs what
// it measured.
func TestTakeoverWhenTheLeadersAreOnTheCutNode(t *testing.T) {
	takeoverAfterNodeCut(t, true, 40*time.Second)
}

func takeoverAfterNodeCut(t *testing.T, leadersOnCutNode bool, allow time.Duration) {
	if testing.Short() {
		t.Skip("a 3-node cluster")
	}
	t.Parallel()
	c := testkit.RunLinkedCluster(t)
	admin := testkit.ConnectURL(t, c.URLs(0))
	ajs := testkit.JetStream(t, admin)
	subj := events.Subjects{}
	testkit.Eventually(t, 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		return events.Provision(ctx, ajs, events.Topology{Subjects: subj, Replicas: 3}) == nil
	}, "topology not provisioned on the cluster")
	for _, b := range []string{subj.WorkersBucket(), subj.LeasesBucket()} {
		testkit.PlaceLeader(t, ajs, admin, "KV_"+b, 2, leadersOnCutNode)
	}
	var shards []events.Shard
	for i := range 6 {
		shards = append(shards, events.Shard{Region: "eu", Tier: fmt.Sprintf("t%d", i)})
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(id string, node int) *owner {
		nc := testkit.ConnectURL(t, c.URLs(node), nats.DontRandomize(), nats.NoReconnect())
		o := newOwner()
		m, err := New(t.Context(), testkit.JetStream(t, nc), subj, id, shards, o, log)
		if err != nil {
			t.Fatal(err)
		}
		testkit.Run(t, m.Run)
		return o
	}
	ox, oy := start("x", 2), start("y", 0)
	theirs, overlap := spread(t, ox, oy, shards)
	cutAt := time.Now()
	c.Cut(2)
	testkit.Eventually(t, allow, func() bool { return oy.holding(shards...) == len(shards) },
		"y holds %d of %d shards after node 3 was cut", oy.holding(shards...), len(shards))
	bound := events.TakeoverBound
	if leadersOnCutNode {
		bound = events.TakeoverBoundElecting
	}
	t.Logf("x's %d shards taken over %s after node 3 was cut (leaders on it: %v; bound %s)", len(theirs),
		time.Since(cutAt).Round(100*time.Millisecond), leadersOnCutNode, bound)
	testkit.Eventually(t, 10*time.Second, func() bool { return ox.holding(theirs...) == 0 }, "x still consumes behind the cut")
	if o := overlap(); len(o) > 0 {
		t.Errorf("y took shards x still consumed: %v", o)
	}
}
