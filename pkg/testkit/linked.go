package testkit

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// LinkedNodes is the size of a LinkedCluster: the least that keeps a
// replicated stream's quorum with one node cut off.
const LinkedNodes = 3

// LinkedCluster is a JetStream cluster whose every route passes through
// a Link, so that a test can cut one node off from the others (which
// RunCluster, routed directly, cannot).
type LinkedCluster struct {
	Servers []*server.Server
	// Links[i][j] carries node i's route dials to node j (nil for i == j).
	Links [LinkedNodes][LinkedNodes]*Link
}

// RunLinkedCluster starts a LinkedCluster (nodes n1..n3) for one test
// and waits until it can place a stream replicated on every node.
func RunLinkedCluster(tb testing.TB) *LinkedCluster {
	tb.Helper()
	ports, err := Ports(LinkedNodes)
	if err != nil {
		tb.Fatalf("cluster ports: %v", err)
	}
	dead := refuser(tb)
	c := &LinkedCluster{}
	for i := range LinkedNodes {
		for j := range LinkedNodes {
			if i != j {
				c.Links[i][j] = NewLink(tb, fmt.Sprintf("127.0.0.1:%d", ports[j]))
			}
		}
	}
	for i := range LinkedNodes {
		opts := ServerOptions(tb.TempDir())
		opts.ServerName = fmt.Sprintf("n%d", i+1)
		// Nodes advertise an address that takes no route, so that a node
		// dials the others only through its links (a gossiped address
		// would go round them), and tell clients of no other node, so
		// that a client stays on the nodes its URL names.
		opts.Cluster = server.ClusterOpts{Name: "linked", Host: "127.0.0.1", Port: ports[i], Advertise: dead, NoAdvertise: true}
		for j := range LinkedNodes {
			if j != i {
				opts.Routes = append(opts.Routes, server.RoutesFromStr(c.Links[i][j].URL())...)
			}
		}
		c.Servers = append(c.Servers, RunServerWith(tb, opts))
	}
	c.WaitReplicable(tb)
	return c
}

// refuser listens on loopback until the test ends and closes every
// connection it accepts; it returns its address.
func refuser(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // closed
			}
			_ = conn.Close()
		}
	}()
	return ln.Addr().String()
}

// routes calls f with every link of node k's routes, both ways.
func (c *LinkedCluster) routes(k int, f func(*Link)) {
	for i := range LinkedNodes {
		if i != k {
			f(c.Links[i][k])
			f(c.Links[k][i])
		}
	}
}

// Cut holds every route of node k (0-based), both ways: a partition.
func (c *LinkedCluster) Cut(k int) {
	c.routes(k, func(l *Link) { l.Cut(Both) })
}

// Heal ends a Cut of node k as a cut that outlasted the routes' pings
// ends: the routes are dropped (what they held is lost) and dialled anew.
func (c *LinkedCluster) Heal(k int) {
	c.routes(k, func(l *Link) {
		l.Drop()
		l.Heal()
	})
}

// URLs is the client URL list of nodes (0-based; every node if none),
// for nats.Connect.
func (c *LinkedCluster) URLs(nodes ...int) string {
	if len(nodes) == 0 {
		nodes = make([]int, len(c.Servers))
		for i := range nodes {
			nodes[i] = i
		}
	}
	urls := make([]string, len(nodes))
	for i, k := range nodes {
		urls[i] = c.Servers[k].ClientURL()
	}
	return strings.Join(urls, ",")
}

// WaitReplicable waits until the cluster can place a stream replicated
// on every node: a meta leader alone is not enough, peers may still be
// coming online.
func (c *LinkedCluster) WaitReplicable(tb testing.TB) {
	tb.Helper()
	nc := ConnectURL(tb, c.URLs())
	defer nc.Close()
	js := JetStream(tb, nc)
	cfg := jetstream.StreamConfig{Name: "TESTKIT_LINKED_READY", Subjects: []string{"testkit.linked.ready"}, Replicas: len(c.Servers), Storage: jetstream.MemoryStorage}
	var err error
	Eventually(tb, 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err = js.CreateStream(ctx, cfg); err == nil {
			err = js.DeleteStream(ctx, cfg.Name)
		}
		return err == nil
	}, "linked cluster cannot place a replicated stream: %v", lastErr{&err})
}

// lastErr prints what *err is when printed, not when made: for a
// message made before the wait whose last error it tells.
type lastErr struct{ err *error }

func (e lastErr) String() string { return fmt.Sprint(*e.err) }

// PlaceLeader steps stream's leader down until it is on node k (0-based;
// on) or on another node (off), asking over nc.
func PlaceLeader(tb testing.TB, js jetstream.JetStream, nc *nats.Conn, stream string, k int, on bool) {
	tb.Helper()
	name := fmt.Sprintf("n%d", k+1)
	var ask []byte // any other node
	if on {
		ask = []byte(`{"placement":{"preferred":"` + name + `"}}`)
	}
	Eventually(tb, 30*time.Second, func() bool {
		st, err := js.Stream(context.Background(), stream)
		if err != nil {
			return false
		}
		info, err := st.Info(context.Background())
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
