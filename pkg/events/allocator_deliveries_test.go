package events_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestAMatchIsDeliveredPastItsLastDelivery: the allocator consumer
// delivers a match however often it was nakked (here past the 10
// deliveries it was once bounded by), so a match whose allocators died
// or were cut off before it was allocated or given up reaches another
// rather than staying in the stream undelivered, its players told
// "matched" and nothing after.
func TestAMatchIsDeliveredPastItsLastDelivery(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	js := testkit.JetStream(t, nc)
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	m := events.Match{MatchID: "m1", Mode: "1v1", Region: "eu", Tier: "gold", Tickets: []events.MatchTicket{
		{TicketID: "t1", Players: []string{"a"}}, {TicketID: "t2", Players: []string{"b"}, Team: 1}}}
	if err := events.NewPublisher(js, subj).Match(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(t.Context(), subj.AllocationsStream(), events.ConsumerAllocator)
	if err != nil {
		t.Fatal(err)
	}
	const pastBound = 10
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(events.AllocatorPullExpiry))
		if err != nil {
			t.Fatal(err)
		}
		for msg := range batch.Messages() {
			md, err := msg.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			if md.NumDelivered > pastBound {
				return
			}
			_ = msg.Nak() // every allocator that takes it dies before it ends
		}
	}
	t.Fatalf("no delivery after the %dth", pastBound)
}

// TestAPushConsumerOfAnOlderTopologyIsMadeAPullConsumer: the allocators'
// consumer was a push consumer before #20's sixteenth round, and the
// server changes no consumer's kind in place. Provisioning deletes it
// and makes it again as a pull consumer, and a match it had delivered
// and not seen acked (its allocator stopped for the upgrade) is
// delivered by the new one: the stream is a work queue, so nothing it
// held is lost.
func TestAPushConsumerOfAnOlderTopologyIsMadeAPullConsumer(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	js := testkit.JetStream(t, nc)
	subj := events.Subjects{}
	topo := events.Topology{}
	if err := events.Provision(t.Context(), js, topo); err != nil {
		t.Fatal(err)
	}
	old := topo.PushAllocatorConsumer()
	if err := js.DeleteConsumer(t.Context(), old.Stream, old.Config.Durable); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreatePushConsumer(t.Context(), old.Stream, old.Config); err != nil {
		t.Fatal(err)
	}
	// The old allocators' queue subscription takes the match and stops
	// before it acks it.
	pushed := make(chan struct{}, 1)
	sub, err := nc.QueueSubscribe(old.Config.DeliverSubject, old.Config.DeliverGroup, func(*nats.Msg) { pushed <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	m := events.Match{MatchID: "m1", Mode: "1v1", Region: "eu", Tier: "gold", Tickets: []events.MatchTicket{
		{TicketID: "t1", Players: []string{"a"}}, {TicketID: "t2", Players: []string{"b"}, Team: 1}}}
	if err := events.NewPublisher(js, subj).Match(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pushed:
	case <-time.After(5 * time.Second):
		t.Fatal("the push consumer never delivered the match")
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := events.Provision(t.Context(), js, topo); err != nil {
		t.Fatalf("provisioning over the push consumer: %v", err)
	}
	cons, err := js.Consumer(t.Context(), subj.AllocationsStream(), events.ConsumerAllocator)
	if err != nil {
		t.Fatalf("the allocators' consumer after provisioning: %v", err)
	}
	if c := cons.CachedInfo().Config; c.AckWait != events.AllocatorAckWait || c.MaxRequestExpires != events.AllocatorPullExpiry {
		t.Fatalf("consumer made again as %+v", c)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(events.AllocatorPullExpiry))
	if err != nil {
		t.Fatal(err)
	}
	msg, ok := <-batch.Messages()
	if !ok {
		t.Fatalf("the match the push consumer held was not delivered by the pull consumer (%v)", batch.Error())
	}
	if got := msg.Headers().Get(jetstream.MsgIDHeader); got != "m1" {
		t.Fatalf("pulled %q, want the match m1", got)
	}
}
