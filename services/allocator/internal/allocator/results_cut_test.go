package allocator

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// lossyJS loses the next async publishes it is given (lost counts them
// down): none is stored and none is ever answered, as a cut that holds
// the route drops them.
type lossyJS struct {
	jetstream.JetStream
	lost atomic.Int32
}

func (l *lossyJS) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if l.lost.Add(-1) >= 0 {
		return testkit.LostAck(m), nil
	}
	return l.JetStream.PublishMsgAsync(m, opts...)
}

// TestLostResultsAreSentAgainSoon: a match assigned whose results are
// lost in a cut (never stored, never acked) is not held until the
// client's async publish timeout (30 s): the wait ends after
// events.ResultsCallTimeout, as NATS unanswered (retried, never failed),
// and the next try tells the players, from the server its record keeps (chaos
// run A1 of #20's sixteenth round: two matches' players heard 35 s late).
func TestLostResultsAreSentAgainSoon(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	p.backend.free.Store(1)
	lossy := &lossyJS{JetStream: p.js}
	lossy.lost.Store(2) // both players' results
	p.as.pub = events.NewPublisher(lossy, p.subj)
	m := pair("m-lost-results")
	done := make(chan error, 1)
	go func() { done <- p.deliver(m, 1) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) || !unavailable(err) {
			t.Fatalf("a try whose results were lost: %v, want NATS unanswered (a deadline)", err)
		}
		if d := p.deadLetters(t); d != 0 {
			t.Fatalf("%d dead letters for results lost in a cut", d)
		}
	case <-time.After(2 * events.ResultsCallTimeout):
		t.Fatalf("a delivery whose results were lost still waits %s on", 2*events.ResultsCallTimeout)
	}
	if err := p.deliver(m, 2); err != nil {
		t.Fatal(err)
	}
	p.assignedOnce(t)
}
