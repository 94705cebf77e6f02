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
	marks := testkit.Collect(t, st.nc, "testkit.seen.>")
	stuck.Store(true)
	ticks <- time.Now()
	for _, id := range []string{"a", "b", "c"} { // the player's other tickets
		st.tell(t, id, "me", events.StatusQueued)
	}
	st.tell(t, "mine", "me", events.StatusAssigned)
	// The connection reads its messages in order, counting each drop
	// before it reads the next: once a marker sent after the results is
	// heard, every drop is counted, and no later tick finds more.
	testkit.Seen(t, st.nc, marks)
	unstick()
	// Ticks go on while the player waits, as Run's ticker does: the
	// first finds the drops; a catch-up that fails (a slow machine) is
	// tried again at a later one.
	heard := make(chan struct{})
	defer close(heard)
	go func() {
		for {
			select {
			case ticks <- time.Now():
			case <-heard:
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
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
