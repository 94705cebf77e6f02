package allocator_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/local"
)

// A match delivered to an allocator that is cut off from NATS before it
// can even see it goes to another allocator once the consumer's AckWait
// (5 s) has passed. With the push consumer the allocators shared before
// (#20's sixteenth round), it waited 30 s, the wait the fifteenth
// round's chaos logs pointed at for its late tickets. The match is
// delivered to the cut allocator's pull, which the server holds from
// before the cut; the other allocator starts only after that delivery.
func TestAMatchDeliveredToACutAllocatorGoesToAnotherAfterAckWait(t *testing.T) {
	t.Parallel()
	admin, js, link, nc := behindLink(t)
	subj := events.Subjects{}
	backend := func() allocator.Backend {
		return local.New([]local.Target{{Server: allocator.Server{Name: "gs-1", Address: "127.0.0.1", Port: 7000}}})
	}
	cut, err := allocator.New(allocator.Config{JoinKey: joinKey}, nc, testkit.JetStream(t, nc), subj, backend(), testLog())
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, cut.Run)
	select {
	case <-cut.Routing():
	case <-time.After(10 * time.Second):
		t.Fatal("the first allocator never routed")
	}
	cons, err := js.Consumer(t.Context(), subj.AllocationsStream(), events.ConsumerAllocator)
	if err != nil {
		t.Fatal(err)
	}
	info := func() *jetstream.ConsumerInfo {
		i, err := cons.Info(t.Context())
		if err != nil {
			return &jetstream.ConsumerInfo{}
		}
		return i
	}
	// Cut while the server holds a pull of its: one that expired in
	// between (each lives 1.8 s) would leave the match to the other.
	for cutWithAPull := false; !cutWithAPull; {
		testkit.Eventually(t, 5*time.Second, func() bool { return info().NumWaiting > 0 }, "the allocator's pull never reached the server")
		link.Cut(testkit.Both)
		if cutWithAPull = info().NumWaiting > 0; !cutWithAPull {
			link.Heal()
		}
	}
	t.Cleanup(link.Drop)
	res := testkit.Collect(t, admin, subj.AllResults())
	if err := events.NewPublisher(js, subj).Match(t.Context(), match("m1", "alice", "bob")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return info().NumAckPending == 1 }, "the match never went to the cut allocator's pull")
	delivered := time.Now()

	other := testkit.ConnectURL(t, admin.ConnectedUrl())
	a, err := allocator.New(allocator.Config{JoinKey: joinKey}, other, testkit.JetStream(t, other), subj, backend(), testLog())
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, a.Run)
	// AckWait (5 s), a pull's expiry (2 s), and room for a busy machine:
	// half the 30 s the push consumer held it. A literal, not the
	// constants' sum: an AckWait made long again fails here.
	const bound = 15 * time.Second
	testkit.Eventually(t, bound, func() bool { return len(res()) >= 2 }, "the match never reached the other allocator")
	t.Logf("assigned %s after its delivery to the cut allocator", time.Since(delivered).Round(time.Millisecond))
}

// paced takes a while to give each server, as a busy Kubernetes API does.
type paced struct {
	counting
	wait time.Duration
}

func (p *paced) Allocate(ctx context.Context, m events.Match) (allocator.Server, error) {
	select {
	case <-time.After(p.wait):
	case <-ctx.Done():
		return allocator.Server{}, ctx.Err()
	}
	return p.counting.Allocate(ctx, m)
}

// A match whose allocation outlasts the consumer's AckWait (a slow
// Kubernetes API) stays with its allocator: the puller tells the server
// it is in progress meanwhile, so the server does not deliver it again
// (to this allocator or another) while it is being allocated.
func TestASlowAllocationKeepsItsDelivery(t *testing.T) {
	t.Parallel()
	b := &paced{wait: events.AllocatorAckWait + 2*time.Second}
	e := start(t, b, allocator.Config{})
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	if err := e.pub.Match(t.Context(), match("m-slow", "alice", "bob")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, func() bool { return len(res()) >= 2 }, "never assigned")
	if n := deliveries(t, e); n != 1 {
		t.Fatalf("delivered %d times while one delivery allocated it", n)
	}
	if n := b.calls.Load(); n != 1 {
		t.Fatalf("backend asked %d times", n)
	}
}

// Matches that wait for room in an allocator (more of them than it
// allocates at once, for longer than the consumer's AckWait) wait in the
// stream, not in the allocator: each is delivered once. The push
// consumer pushed up to its limit at once, and those waiting in the
// allocator's buffers, never started and so never said in progress,
// came back after AckWait (the partitions' third round: with a 3 s
// AckWait, 150 matches were delivered 316 times).
func TestMatchesWaitingForRoomAreDeliveredOnce(t *testing.T) {
	t.Parallel()
	const matches = 60
	b := &paced{wait: 400 * time.Millisecond}
	// 60 matches, 4 at a time, 0.4 s each: 6 s, past the 5 s AckWait.
	e := start(t, b, allocator.Config{Concurrency: 4})
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	for i := range matches {
		if err := e.pub.Match(t.Context(), match(fmt.Sprintf("m%d", i), fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 60*time.Second, func() bool { return len(res()) >= 2*matches }, "not every match assigned")
	if n := deliveries(t, e); n != matches {
		t.Fatalf("%d deliveries of %d matches", n, matches)
	}
}

// deliveries counts the deliveries of the allocators' consumer, the
// first of each match and every one after: its delivery sequence.
func deliveries(t *testing.T, e *env) uint64 {
	t.Helper()
	cons, err := e.js.Consumer(t.Context(), e.subj.AllocationsStream(), events.ConsumerAllocator)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.Delivered.Consumer
}
