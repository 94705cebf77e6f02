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

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// cutCluster is a 3-node JetStream cluster whose routes all pass through
// links: links[i][j] carries node i's dials to node j.
type cutCluster struct {
	servers []*server.Server
	links   [3][3]*testkit.Link
}

func runCutCluster(t *testing.T) *cutCluster {
	t.Helper()
	ports, err := testkit.Ports(3)
	if err != nil {
		t.Fatal(err)
	}
	c := &cutCluster{}
	for i := range 3 {
		for j := range 3 {
			if i != j {
				c.links[i][j] = testkit.NewLink(t, fmt.Sprintf("127.0.0.1:%d", ports[j]))
			}
		}
	}
	for i := range 3 {
		opts := testkit.ServerOptions(t.TempDir())
		opts.ServerName = fmt.Sprintf("n%d", i+1)
		opts.Cluster = server.ClusterOpts{Name: "cut", Host: "127.0.0.1", Port: ports[i], NoAdvertise: true}
		// A node gossiped to the others is dialled through a link too;
		// through node 3's, so that a cut of node 3 holds them.
		if i == 2 {
			opts.Cluster.Advertise = c.links[0][2].Addr()
		} else {
			opts.Cluster.Advertise = c.links[2][i].Addr()
		}
		for j := range 3 {
			if j != i {
				opts.Routes = append(opts.Routes, server.RoutesFromStr("nats://"+c.links[i][j].Addr())...)
			}
		}
		c.servers = append(c.servers, testkit.RunServerWith(t, opts))
	}
	return c
}

// cut holds every route of node k.
func (c *cutCluster) cut(k int) {
	for i := range 3 {
		if i != k {
			c.links[i][k].Cut(testkit.Both)
			c.links[k][i].Cut(testkit.Both)
		}
	}
}

// placeLeader steps the leader of stream down until it is on node k (on)
// or not (off).
func placeLeader(t *testing.T, js jetstream.JetStream, nc *nats.Conn, stream string, k int, on bool) {
	t.Helper()
	name := fmt.Sprintf("n%d", k+1)
	var ask []byte // any other node
	if on {
		ask = []byte(`{"placement":{"preferred":"` + name + `"}}`)
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		st, err := js.Stream(t.Context(), stream)
		if err != nil {
			return false
		}
		info, err := st.Info(t.Context())
		if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
			return false
		}
		if (info.Cluster.Leader == name) == on {
			return true
		}
		_, _ = nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, ask, 2*time.Second)
		return false
	}, "leader of %s: want on %s %v", stream, name, on)
}

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
	c := runCutCluster(t)
	admin := testkit.ConnectURL(t, c.servers[0].ClientURL())
	ajs := testkit.JetStream(t, admin)
	subj := events.Subjects{}
	testkit.Eventually(t, 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		return events.Provision(ctx, ajs, events.Topology{Subjects: subj, Replicas: 3}) == nil
	}, "topology not provisioned on the cluster")
	for _, b := range []string{subj.WorkersBucket(), subj.LeasesBucket()} {
		placeLeader(t, ajs, admin, "KV_"+b, 2, leadersOnCutNode)
	}
	var shards []events.Shard
	for i := range 6 {
		shards = append(shards, events.Shard{Region: "eu", Tier: fmt.Sprintf("t%d", i)})
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(id string, node int) *owner {
		nc := testkit.ConnectURL(t, c.servers[node].ClientURL(), nats.DontRandomize(), nats.NoReconnect())
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
	c.cut(2)
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
