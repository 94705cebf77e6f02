package results

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestDroppedResultsAreCountedAndReadBack: when results come faster than
// Run takes them, nats.go drops what its channel cannot hold (a slow
// consumer). The drops are counted and logged, and a dropped result of a
// tracked ticket still reaches its waiter, read from the RESULTS stream;
// before #20 the waiter heard nothing until the ticket's expiry.
func TestDroppedResultsAreCountedAndReadBack(t *testing.T) {
	t.Parallel()
	var (
		stuck   atomic.Bool
		release = make(chan struct{})
		ticks   = make(chan time.Time)
	)
	st := newStack(t, false, func(tr *Tracker) {
		tr.msgs = make(chan *nats.Msg, 1) // full after one result
		tr.ticks = ticks
		// Run asks each tracked ticket's wait on a tick: held there, it
		// takes no result, as a Run far behind.
		tr.waits = func(string) time.Duration {
			if stuck.Load() {
				<-release
			}
			return time.Hour
		}
	})
	var once sync.Once
	unstick := func() {
		once.Do(func() {
			stuck.Store(false)
			close(release)
		})
	}
	t.Cleanup(unstick) // before Run's own: a failed test lets Run end
	w := st.track(t, t.Context(), "mine", "me")
	stuck.Store(true)
	ticks <- time.Now()
	in := st.nc.Stats().InMsgs
	for _, id := range []string{"a", "b", "c"} { // the player's other tickets
		st.tell(t, id, "me", events.StatusQueued)
	}
	st.tell(t, "mine", "me", events.StatusAssigned)
	testkit.Eventually(t, 10*time.Second, func() bool { return st.nc.Stats().InMsgs >= in+4 }, "results not delivered to the tracker's connection")
	unstick()
	ticks <- time.Now() // this tick finds the drops
	if r := await(t, w, "assigned, dropped"); r.Status != events.StatusAssigned {
		t.Fatalf("got %s, want assigned", r.Status)
	}
	if n := testutil.ToFloat64(st.tr.met.dropped); n < 1 {
		t.Fatalf("%v results counted as dropped, want at least 1", n)
	}
	if n := testutil.ToFloat64(st.tr.met.catchUps.WithLabelValues("dropped")); n != 1 {
		t.Fatalf("%v catch-ups after drops, want 1", n)
	}
}
