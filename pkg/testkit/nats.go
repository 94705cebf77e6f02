package testkit

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// ServerOptions are the options of an embedded JetStream server: loopback,
// a random port, JetStream on, no logs, no signal handlers. StoreDir must be
// set by the caller.
func ServerOptions(storeDir string) *server.Options {
	return &server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  storeDir,
		NoLog:     true,
		NoSigs:    true,
	}
}

// StartServer starts an embedded server and waits until it takes
// connections. It is for programs (the local stack) as well as tests.
func StartServer(opts *server.Options) (*server.Server, error) {
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("new nats server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server on %s:%d not ready after 10s", opts.Host, opts.Port)
	}
	return s, nil
}

// RunServer starts a JetStream server for one test and shuts it down when
// the test ends.
func RunServer(tb testing.TB) *server.Server {
	tb.Helper()
	return RunServerWith(tb, ServerOptions(tb.TempDir()))
}

// RunServerWith is RunServer with opts (from ServerOptions, changed).
func RunServerWith(tb testing.TB, opts *server.Options) *server.Server {
	tb.Helper()
	s, err := StartServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect opens a connection to s that is closed when the test ends.
func Connect(tb testing.TB, s *server.Server, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	return ConnectURL(tb, s.ClientURL(), opts...)
}

// ConnectURL opens a connection to url (a comma-separated list for a
// cluster) that is closed when the test ends.
func ConnectURL(tb testing.TB, url string, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		tb.Fatalf("connect %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream handle on nc.
func JetStream(tb testing.TB, nc *nats.Conn) jetstream.JetStream {
	tb.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	return js
}

// Cluster is a running JetStream cluster.
type Cluster struct {
	Servers []*server.Server
}

// URLs is the client URL list of every node, for nats.Connect.
func (c *Cluster) URLs() string {
	u := ""
	for i, s := range c.Servers {
		if i > 0 {
			u += ","
		}
		u += s.ClientURL()
	}
	return u
}

// RunCluster starts an n-node JetStream cluster (n >= 3 for replicated
// streams) and waits until it has a JetStream meta leader.
func RunCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	ports, err := Ports(n)
	if err != nil {
		tb.Fatalf("cluster ports: %v", err)
	}
	routes := make([]*url.URL, n)
	for i := range n {
		routes[i] = &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])}
	}
	c := &Cluster{}
	for i := range n {
		opts := ServerOptions(tb.TempDir())
		opts.ServerName = fmt.Sprintf("n%d", i+1)
		opts.Cluster = server.ClusterOpts{Name: "testkit", Host: "127.0.0.1", Port: ports[i]}
		opts.Routes = routes
		s, err := StartServer(opts)
		if err != nil {
			tb.Fatalf("cluster node %d: %v", i+1, err)
		}
		tb.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		c.Servers = append(c.Servers, s)
	}
	// Ready means a replicated stream can be placed: a meta leader alone is
	// not enough, peers may still be coming online.
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		tb.Fatalf("connect to cluster: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TESTKIT_READY", Subjects: []string{"testkit.ready"}, Replicas: n, Storage: jetstream.MemoryStorage})
		if err == nil {
			err = js.DeleteStream(ctx, "TESTKIT_READY")
		}
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			tb.Fatalf("cluster of %d cannot place a replicated stream after 30s: %v", n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Collect subscribes to subject (wildcards allowed) and returns a function
// that gives every message received so far, in order.
func Collect(tb testing.TB, nc *nats.Conn, subject string) func() []*nats.Msg {
	tb.Helper()
	var mu sync.Mutex
	var got []*nats.Msg
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
	})
	if err != nil {
		tb.Fatalf("subscribe %s: %v", subject, err)
	}
	tb.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		tb.Fatalf("flush: %v", err)
	}
	return func() []*nats.Msg {
		mu.Lock()
		defer mu.Unlock()
		return append([]*nats.Msg(nil), got...)
	}
}

// Seen is what see (a Collect of ">" on nc) has gathered, once it has
// handled every message sent before the call: nc.Flush returns before
// the subscription's handler has run, and a check that a message never
// came would pass for that alone. Once a marker published last is
// handled, so is every message before it: a subscription handles its
// messages in order.
func Seen(tb testing.TB, nc *nats.Conn, see func() []*nats.Msg) []*nats.Msg {
	tb.Helper()
	marker := "testkit.seen." + nuid.Next()
	if err := nc.Publish(marker, nil); err != nil {
		tb.Fatal(err)
	}
	Eventually(tb, 5*time.Second, func() bool {
		return slices.ContainsFunc(see(), func(m *nats.Msg) bool { return m.Subject == marker })
	}, "marker %s not seen", marker)
	return see()
}

// StreamMsgs is the number of messages stream holds now.
func StreamMsgs(tb testing.TB, js jetstream.JetStream, stream string) uint64 {
	tb.Helper()
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		tb.Fatalf("stream %s: %v", stream, err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		tb.Fatalf("stream %s info: %v", stream, err)
	}
	return info.State.Msgs
}
