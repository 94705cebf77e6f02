package events_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

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
	most := make(chan uint64, 100)
	sub, err := nc.QueueSubscribe(subj.AllocatorDeliverSubject(), events.AllocatorDeliverGroup, func(m *nats.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		most <- md.NumDelivered
		_ = m.Nak() // every allocator that takes it dies before it ends
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	m := events.Match{MatchID: "m1", Mode: "1v1", Region: "eu", Tier: "gold", Tickets: []events.MatchTicket{
		{TicketID: "t1", Players: []string{"a"}}, {TicketID: "t2", Players: []string{"b"}, Team: 1}}}
	if err := events.NewPublisher(js, subj).Match(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	const pastBound = 10
	deadline := time.After(10 * time.Second)
	for {
		select {
		case n := <-most:
			if n > pastBound {
				return
			}
		case <-deadline:
			t.Fatalf("no delivery after the %dth", pastBound)
		}
	}
}
