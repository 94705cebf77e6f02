package results

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// expiries records a tracker's expiries of each ticket; those of the
// ticket "held" wait until release is closed, as an expiry under a
// partition waits on NATS.
type expiries struct {
	release chan struct{}
	mu      sync.Mutex
	calls   map[string]int
	// unbounded counts expiries handed a context without a deadline.
	unbounded int
}

func (x *expiries) expire(ctx context.Context, ticketID string) {
	x.mu.Lock()
	x.calls[ticketID]++
	if _, ok := ctx.Deadline(); !ok {
		x.unbounded++
	}
	x.mu.Unlock()
	if ticketID == "held" {
		select {
		case <-x.release:
		case <-ctx.Done():
		}
	}
}

func (x *expiries) count(ticketID string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.calls[ticketID]
}

// TestExpiryInFlightIsNotFiredAgain is the pile-up of issue #19's
// review: the tracker fired a ticket's expiry again every wait while the
// one before still waited on NATS (cut off, an expiry retried until its
// result was stored), with no deadline: a goroutine more per waiting
// ticket per wait, all hitting NATS at the heal. A ticket has at most one
// expiry in flight, bounded, and the next one comes after it returned.
func TestExpiryInFlightIsNotFiredAgain(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	x := &expiries{release: make(chan struct{}), calls: map[string]int{}}
	waits := func(string) time.Duration { return time.Millisecond }
	tr := New(nc, events.Subjects{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), waits, x.expire)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = tr.Run(ctx) }()
	old := time.Now().Add(-time.Hour)
	for _, tk := range []events.Ticket{{TicketID: "held", PlayerID: "a", CreatedAt: old}, {TicketID: "free", PlayerID: "b", CreatedAt: old}} {
		if err := tr.Track(t.Context(), &tk, nil); err != nil {
			t.Fatal(err)
		}
	}
	// "free" is expired at every tick it is due; by its third expiry
	// "held" was due at two ticks more.
	testkit.Eventually(t, 20*time.Second, func() bool { return x.count("free") >= 3 }, "free not expired again and again")
	if n := x.count("held"); n != 1 {
		t.Fatalf("%d expiries of held in flight at once, want 1", n)
	}
	close(x.release)
	testkit.Eventually(t, 20*time.Second, func() bool { return x.count("held") >= 2 }, "held not expired again once its expiry returned")
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.unbounded != 0 {
		t.Fatalf("%d expiries without a deadline", x.unbounded)
	}
}
