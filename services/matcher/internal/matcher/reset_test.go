package matcher

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestAResetAmidDeliveriesLosesNoTicket: on a three-node cluster, the
// owner's tickets consumer is reset while tickets keep coming and some
// are nakked (takes that failed), as in a chaos run's leader changes;
// then the consumer's leader changes. nats-server 2.15 goes on
// delivering between a replicated reset's proposal and its commit, and
// a delivery there left the consumer's stored state counting the
// tickets the reset gave again as acked: at the leader change they left
// the work-queue stream with no ack (chaos run C2's lost ticket; with
// the reset made under the consume, the first round here lost 56 of
// 209). Nothing here acks, so the stream must keep every ticket.
func TestAResetAmidDeliveriesLosesNoTicket(t *testing.T) {
	t.Parallel()
	c := testkit.RunCluster(t, 3)
	nc := testkit.ConnectURL(t, c.URLs())
	js := testkit.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	subj := events.Subjects{}
	if err := events.Provision(ctx, js, events.Topology{Subjects: subj, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	stream, name := subj.TicketsStream(), events.ShardConsumer("eu", "gold")
	inbox, stopC := make(chan jetstream.Msg, 4096), make(chan struct{})
	defer close(stopC)
	f := &feed{js: js, nc: nc, specs: []consumerSpec{{stream, name}}, timeout: 5 * time.Second,
		log: slog.New(slog.NewTextHandler(testLog(), nil)), inbox: inbox, stopC: stopC, now: time.Now,
		ccs: make([]jetstream.ConsumeContext, 1), silences: make([]silence, 1), wake: make(chan struct{}, 1), watched: make(chan struct{})}
	var delivered atomic.Int64
	go func() {
		for {
			select {
			case <-stopC:
				return
			case m := <-inbox:
				if delivered.Add(1)%3 == 0 {
					_ = m.Nak() // given again at once, as a take that failed
				}
			}
		}
	}()
	var published atomic.Int64
	pub := func() {
		n := published.Add(1)
		data := fmt.Sprintf(`{"ticket_id":"t%d","player_id":"p%d","skill":1800}`, n, n)
		if _, err := js.Publish(ctx, subj.Ticket("eu", "gold"), []byte(data)); err != nil {
			t.Error(err)
		}
	}
	for range 50 {
		pub()
	}
	cc, err := f.consume(ctx, 0) // as start's
	if err != nil {
		t.Fatal(err)
	}
	f.ccs[0] = cc
	testkit.Eventually(t, 10*time.Second, func() bool { return delivered.Load() >= 50 }, "the tickets were never delivered")
	for round := range 5 {
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
					pub()
				}
			}
		}()
		time.Sleep(20 * time.Millisecond)
		if err := f.resetConsumer(ctx, 0); err != nil {
			t.Fatalf("round %d: reset: %v", round, err)
		}
		time.Sleep(50 * time.Millisecond)
		close(stop)
		<-done
		time.Sleep(200 * time.Millisecond) // the redeliveries' state is replicated
		// A leader change: each replica checks its stored state against
		// the stream (and removes what it takes for acked).
		if _, err := nc.Request(fmt.Sprintf("$JS.API.CONSUMER.LEADER.STEPDOWN.%s.%s", stream, name), nil, 5*time.Second); err != nil {
			t.Fatalf("round %d: step down: %v", round, err)
		}
		testkit.Eventually(t, 10*time.Second, func() bool {
			ictx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			ci, err := js.Consumer(ictx, stream, name)
			return err == nil && ci.CachedInfo().Cluster != nil && ci.CachedInfo().Cluster.Leader != ""
		}, "the consumer never had a leader again")
		time.Sleep(500 * time.Millisecond)
		if held := testkit.StreamMsgs(t, js, stream); held != uint64(published.Load()) {
			t.Fatalf("round %d: %d tickets published, none acked, and the stream holds %d", round, published.Load(), held)
		}
	}
	f.mu.Lock()
	f.ccs[0].Stop()
	f.mu.Unlock()
}
