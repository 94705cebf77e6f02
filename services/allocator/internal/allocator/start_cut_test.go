package allocator_test

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/local"
)

// behindLink runs a NATS server with the topology provisioned, and
// returns an admin connection to it and its JetStream, a link to it, and
// a connection through the link (the allocator's, for a test to cut).
func behindLink(t *testing.T) (admin *nats.Conn, js jetstream.JetStream, link *testkit.Link, nc *nats.Conn) {
	t.Helper()
	s := testkit.RunServer(t)
	admin = testkit.Connect(t, s)
	js = testkit.JetStream(t, admin)
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	link = testkit.NewLink(t, s.Addr().String())
	return admin, js, link, testkit.ConnectURL(t, link.URL())
}

// An allocator (re)started while NATS is cut off from it, after the
// process found the topology, waits for NATS and then allocates,
// reports capacity and asks for backfills, run together as its main
// runs them (one ending ends them all); each used to end at the first
// bucket it could not bind ("allocations bucket: context deadline
// exceeded"), and the process with it. The cut holds until each of them
// says it is retrying, so the test shows the retries.
func TestStartWaitsOutACut(t *testing.T) {
	t.Parallel()
	admin, js, link, nc := behindLink(t)
	subj := events.Subjects{}
	cut := testkit.JetStream(t, nc)
	// Healed once all three have failed once: a request the cut holds is
	// sent at the heal, and one still within its timeout then would pass
	// without a retry.
	watch := testkit.WatchLog("bind the buckets: "+service.RetryNote, "bind the capacity bucket: "+service.RetryNote,
		"bind the buckets of backfill: "+service.RetryNote)
	log := watch.Logger()
	backend := local.New([]local.Target{{Server: allocator.Server{Name: "gs-1", Address: "127.0.0.1", Port: 7000}}})
	a, err := allocator.New(allocator.Config{JoinKey: joinKey}, nc, cut, subj, backend, log)
	if err != nil {
		t.Fatal(err)
	}
	link.CutUntil(t, watch.Seen())
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := a.Bind(gctx); err != nil {
			return err
		}
		return a.Run(gctx)
	})
	g.Go(func() error {
		return allocator.ReportCapacity(gctx, cut, subj, []string{"eu"}, fixedCapacity{3, 10, 2}, 50*time.Millisecond, log)
	})
	g.Go(func() error {
		return allocator.RequestBackfills(gctx, cut, subj, backend, allocator.BackfillConfig{Every: 20 * time.Millisecond, MinInterval: 50 * time.Millisecond}, log)
	})
	defer func() {
		cancel()
		if err := g.Wait(); err != nil {
			t.Errorf("after the heal: %v", err)
		}
	}()

	res := testkit.Collect(t, admin, subj.AllResults())
	if err := events.NewPublisher(js, subj).Match(t.Context(), match("m1", "alice", "bob")); err != nil {
		t.Fatal(err)
	}
	assigned := func() int {
		n := 0
		for _, m := range res() {
			if r, err := events.DecodeResult(m.Data); err == nil && r.Status == events.StatusAssigned {
				n++
			}
		}
		return n
	}
	capacity, err := js.KeyValue(t.Context(), subj.CapacityBucket())
	if err != nil {
		t.Fatal(err)
	}
	reported := func() bool {
		e, err := capacity.Get(t.Context(), "eu")
		var c events.Capacity
		return err == nil && json.Unmarshal(e.Value(), &c) == nil && c.FreeRooms == 3
	}
	deadline := time.After(30 * time.Second)
	for assigned() < 2 || !reported() {
		select {
		case <-gctx.Done():
			cancel()
			t.Fatalf("ended at a cut NATS heals from: %v", g.Wait())
		case <-deadline:
			t.Fatalf("30 s on: %d of the match's 2 players assigned, capacity reported %v", assigned(), reported())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// NATS lost in the moment between Bind and the router's first pull
// (which looks the consumer up again) is waited out too: the router's
// start is retried, and the match is allocated after the heal. Run used
// to return the subscription's error, and the process ended.
func TestRouterStartWaitsOutACut(t *testing.T) {
	t.Parallel()
	admin, js, link, nc := behindLink(t)
	subj := events.Subjects{}
	watch := testkit.WatchLog("pull the allocation requests: " + service.RetryNote)
	backend := local.New([]local.Target{{Server: allocator.Server{Name: "gs-1", Address: "127.0.0.1", Port: 7000}}})
	a, err := allocator.New(allocator.Config{JoinKey: joinKey}, nc, testkit.JetStream(t, nc), subj, backend, watch.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Bind(t.Context()); err != nil {
		t.Fatal(err)
	}
	link.CutUntil(t, watch.Seen())
	// Ended 30 s on whatever happens (no heal then).
	ctx, cancel := context.WithCancel(context.Background())
	defer time.AfterFunc(30*time.Second, cancel).Stop()
	var ranErr error
	ran := make(chan struct{})
	go func() { ranErr = a.Run(ctx); close(ran) }()
	defer func() {
		cancel()
		<-ran
		if ranErr != nil {
			t.Errorf("Run at its stop: %v", ranErr)
		}
	}()

	res := testkit.Collect(t, admin, subj.AllResults())
	if err := events.NewPublisher(js, subj).Match(t.Context(), match("m1", "alice", "bob")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		select {
		case <-ran:
			t.Fatalf("Run ended at a cut NATS heals from: %v", ranErr)
		default:
		}
		n := 0
		for _, m := range res() {
			if r, err := events.DecodeResult(m.Data); err == nil && r.Status == events.StatusAssigned {
				n++
			}
		}
		return n == 2
	}, "the match's players not assigned after the heal")
	select {
	case <-a.Routing():
	default:
		t.Fatal("allocating, yet not routing (the process would not say ready)")
	}
}

// A router that cannot start for a reason no wait mends (here the
// allocators' consumer made again, after Bind found it, as the push
// consumer of an older topology: there is nothing to pull from) ends
// Run, and the process, saying why; retried as NATS lost is, it would
// stay ready and allocate nothing, quietly.
func TestRouterStartRefusedEndsRun(t *testing.T) {
	t.Parallel()
	a := refusedAllocator(t)
	ran := make(chan error, 1)
	go func() { ran <- a.Run(t.Context()) }()
	select {
	case err := <-ran:
		if !errors.Is(err, service.ErrPermanent) || !errors.Is(err, jetstream.ErrNotPullConsumer) {
			t.Fatalf("Run = %v, want an error no wait mends", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run still retrying 20 s on a router no wait lets start")
	}
	select {
	case <-a.Routing():
		t.Fatal("routing, though its router never ran")
	default:
	}
}

// A router start that fails leaves nothing running: watermill's router,
// subscribing for itself, left a goroutine waiting for its handler for
// good, one per failed attempt (review R2). Not parallel: it counts the
// goroutines of the whole test binary, which parallel tests would move.
func TestFailedRouterStartLeavesNoGoroutine(t *testing.T) {
	a := refusedAllocator(t)
	waiting := func() int {
		buf := make([]byte, 1<<22)
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), "watchAllHandlersStopped")
	}
	before := waiting()
	if err := a.Run(t.Context()); !errors.Is(err, service.ErrPermanent) {
		t.Fatalf("Run = %v, want an error no wait mends", err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for waiting() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d router goroutines left waiting after the failed start (%d before)", waiting(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// refusedAllocator is a bound allocator whose consumer was then made
// again as a push consumer (an older topology's): its router can never
// start.
func refusedAllocator(t *testing.T) *allocator.Allocator {
	t.Helper()
	s := testkit.RunServer(t)
	nc := testkit.Connect(t, s)
	js := testkit.JetStream(t, nc)
	subj := events.Subjects{}
	topo := events.Topology{}
	if err := events.Provision(t.Context(), js, topo); err != nil {
		t.Fatal(err)
	}
	backend := local.New([]local.Target{{Server: allocator.Server{Name: "gs-1", Address: "127.0.0.1", Port: 7000}}})
	a, err := allocator.New(allocator.Config{JoinKey: joinKey}, nc, js, subj, backend, testLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Bind(t.Context()); err != nil {
		t.Fatal(err)
	}
	old := topo.PushAllocatorConsumer()
	if err := js.DeleteConsumer(t.Context(), old.Stream, old.Config.Durable); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreatePushConsumer(t.Context(), old.Stream, old.Config); err != nil {
		t.Fatal(err)
	}
	return a
}

// An allocator whose NATS user may not take the allocation requests (no
// permission to pull from the consumer) ends Run, saying so, instead of
// going ready and allocating nothing: the server drops the pull and says
// so apart, and the pull itself only waits out its expiry (review R4's
// L2, of the push consumer's subscription then).
func TestRouterSubscriptionRefusedEndsRun(t *testing.T) {
	t.Parallel()
	subj := events.Subjects{}
	opts := testkit.ServerOptions(t.TempDir())
	opts.Users = []*server.User{
		{Username: "admin", Password: "admin"},
		{Username: "allocator", Password: "allocator", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.CONSUMER.MSG.NEXT.>"}},
		}},
	}
	s := testkit.RunServerWith(t, opts)
	if err := events.Provision(t.Context(), testkit.JetStream(t, testkit.Connect(t, s, nats.UserInfo("admin", "admin"))), events.Topology{}); err != nil {
		t.Fatal(err)
	}
	nc := testkit.Connect(t, s, nats.UserInfo("allocator", "allocator"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	backend := local.New([]local.Target{{Server: allocator.Server{Name: "gs-1", Address: "127.0.0.1", Port: 7000}}})
	a, err := allocator.New(allocator.Config{JoinKey: joinKey}, nc, testkit.JetStream(t, nc), subj, backend, testLog())
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- a.Run(t.Context()) }()
	select {
	case err := <-ran:
		if !errors.Is(err, service.ErrPermanent) || !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("Run = %v, want a permanent permissions violation", err)
		}
	case <-a.Routing():
		t.Fatal("routing, with pulls the server refused")
	case <-time.After(20 * time.Second):
		t.Fatal("Run still running 20 s on pulls the server refused")
	}
}
