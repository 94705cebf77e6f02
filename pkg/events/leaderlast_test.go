package events_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestLeaderReaderLasts: the last message of each subject, nil for a subject
// with none, an error for a wildcard or a stream that does not exist
// (not taken for "no message": both are 404s).
func TestLeaderReaderLasts(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	js := testkit.JetStream(t, nc)
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	pub := events.NewPublisher(js, subj)
	for _, r := range []events.Result{
		{TicketID: "t1", PlayerID: "p1", Status: events.StatusQueued},
		{TicketID: "t2", PlayerID: "p2", Status: events.StatusQueued},
		{TicketID: "t1", PlayerID: "p1", Status: events.StatusCancelled},
	} {
		if err := pub.Result(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	subjects := []string{subj.Result("p1"), subj.Result("nobody"), subj.Result("p2"), subj.AllResults()}
	r := events.NewLeaderReader(nc)
	defer r.Close()
	msgs, errs := r.Lasts(t.Context(), subj.ResultsStream(), subjects)
	for i, want := range []events.Status{events.StatusCancelled, "", events.StatusQueued} {
		if errs[i] != nil {
			t.Fatalf("%s: %v", subjects[i], errs[i])
		}
		if want == "" {
			if msgs[i] != nil {
				t.Fatalf("%s: got %+v, want none", subjects[i], msgs[i])
			}
			continue
		}
		r, err := events.DecodeResult(msgs[i].Data)
		if err != nil || r.Status != want || msgs[i].Subject != subjects[i] || msgs[i].Sequence == 0 {
			t.Fatalf("%s: got %+v (%v) at %d, want %s", subjects[i], r, err, msgs[i].Sequence, want)
		}
	}
	if errs[3] == nil {
		t.Fatalf("a wildcard read as one subject: %+v", msgs[3])
	}
	_, errs = r.Lasts(t.Context(), "NO_SUCH_STREAM", subjects[:1])
	if errs[0] == nil {
		t.Fatal("a stream that does not exist read as a subject with no message")
	}
}

// queuedResults provisions the topology through nc and publishes a
// "queued" result of ticket t-<p> for each player p.
func queuedResults(t *testing.T, nc *nats.Conn, players ...string) {
	t.Helper()
	js := testkit.JetStream(t, nc)
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	pub := events.NewPublisher(js, events.Subjects{})
	for _, p := range players {
		if err := pub.Result(t.Context(), events.Result{TicketID: "t-" + p, PlayerID: p, Status: events.StatusQueued}); err != nil {
			t.Fatal(err)
		}
	}
}

// readQueued reads player's last result through r within wait: an error
// unless it is queuedResults' own, t-<player>.
func readQueued(t *testing.T, r *events.LeaderReader, player string, wait time.Duration) error {
	subj := events.Subjects{}
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	msgs, errs := r.Lasts(ctx, subj.ResultsStream(), []string{subj.Result(player)})
	if errs[0] != nil {
		return fmt.Errorf("%s: %w", player, errs[0])
	}
	if msgs[0] == nil {
		return fmt.Errorf("%s: no result", player)
	}
	if res, err := events.DecodeResult(msgs[0].Data); err != nil || res.TicketID != "t-"+player {
		return fmt.Errorf("%s: read %+v (%v), want its own result", player, res, err)
	}
	return nil
}

// TestLeaderReaderKeepsOneSubscription: reads through one reader, one
// after another and side by side, share one subscription, made at the
// first read (a subscription per read cost the server a SUB and an UNSUB
// each, and each walked its subject cache), and each read gets its own
// answers, not another's.
func TestLeaderReaderKeepsOneSubscription(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	players := make([]string, 40)
	for i := range players {
		players[i] = fmt.Sprintf("p%d", i)
	}
	queuedResults(t, nc, players...)
	r := events.NewLeaderReader(nc)
	defer r.Close()
	base := nc.NumSubscriptions()
	for i := range 3 {
		if err := readQueued(t, r, players[i], 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if got := nc.NumSubscriptions(); got != base+1 {
			t.Fatalf("after read %d: %d subscriptions, want %d (one kept)", i, got, base+1)
		}
	}
	var g errgroup.Group
	for _, p := range players {
		g.Go(func() error { return readQueued(t, r, p, 10*time.Second) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := nc.NumSubscriptions(); got != base+1 {
		t.Fatalf("after reads side by side: %d subscriptions, want %d", got, base+1)
	}
	r.Close()
	if got := nc.NumSubscriptions(); got != base {
		t.Fatalf("after Close: %d subscriptions, want %d", got, base)
	}
	if err := readQueued(t, r, players[0], 10*time.Second); err != nil {
		t.Fatalf("a read after Close: %v", err)
	}
}

// TestLeaderReaderAfterACancelledRead: a read given up before its answers
// came leaves nothing that a later read takes for its own.
func TestLeaderReaderAfterACancelledRead(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	queuedResults(t, nc, "a", "b")
	r := events.NewLeaderReader(nc)
	defer r.Close()
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	subj := events.Subjects{}
	if _, errs := r.Lasts(gone, subj.ResultsStream(), []string{subj.Result("a")}); errs[0] == nil {
		t.Fatal("a read given up before it was sent came back without an error")
	}
	for range 5 {
		if err := readQueued(t, r, "b", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLeaderReaderAfterAReconnect: the kept subscription outlives the
// connection's loss of its server: reads after a reconnect are answered
// (nats.go subscribes again), not left to time out.
func TestLeaderReaderAfterAReconnect(t *testing.T) {
	t.Parallel()
	opts := testkit.ServerOptions(t.TempDir())
	s, err := testkit.StartServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Port = s.Addr().(*net.TCPAddr).Port
	reconnected := make(chan struct{}, 1)
	nc := testkit.Connect(t, s, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	queuedResults(t, nc, "a")
	r := events.NewLeaderReader(nc)
	defer r.Close()
	if err := readQueued(t, r, "a", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	s.WaitForShutdown()
	s, err = testkit.StartServer(opts) // the same port and store
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("not reconnected")
	}
	if err := readQueued(t, r, "a", 10*time.Second); err != nil {
		t.Fatalf("a read after the reconnect: %v", err)
	}
}

// TestLeaderReaderSubscribesAgainAfterADeafRead: a subscription the
// server refused (here the connection's subscription limit; a permission
// reloaded away alike) is held valid by nats.go, and a reader that kept
// it would hear nothing until a reconnect. A read that hears nothing by
// its deadline retires it, and the next read, once the server takes
// subscriptions again, is answered (review R6's M1).
func TestLeaderReaderSubscribesAgainAfterADeafRead(t *testing.T) {
	t.Parallel()
	opts := testkit.ServerOptions(t.TempDir())
	opts.MaxSubs = 2
	s := testkit.RunServerWith(t, opts)
	queuedResults(t, testkit.Connect(t, s), "a")
	nc := testkit.Connect(t, s, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	full, err := nc.SubscribeSync("x.a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.SubscribeSync("x.b"); err != nil {
		t.Fatal(err)
	}
	r := events.NewLeaderReader(nc)
	defer r.Close()
	if err := readQueued(t, r, "a", time.Second); err == nil {
		t.Fatal("a read whose subscription the server refused was answered")
	}
	if err := full.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := readQueued(t, r, "a", 5*time.Second); err != nil {
		t.Fatalf("a read after the server takes subscriptions again: %v", err)
	}
}
