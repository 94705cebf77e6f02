package allocator_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/local"
)

// An allocator (re)started while NATS is cut off from it, after the
// process found the topology, waits for NATS and then allocates,
// reports capacity and asks for backfills, run together as its main
// runs them (one ending ends them all); each used to end at the first
// bucket it could not bind ("allocations bucket: context deadline
// exceeded"), and the process with it. The cut holds until each of them
// says it is retrying, so the test shows the retries.
func TestStartWaitsOutACut(t *testing.T) {
	t.Parallel()
	s := testkit.RunServer(t)
	admin := testkit.Connect(t, s)
	js := testkit.JetStream(t, admin)
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	link := testkit.NewLink(t, s.Addr().String())
	nc := testkit.ConnectURL(t, link.URL())
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
