package results

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// A ticket whose outcome comes before any wait on it (its client's
// stream on its way) is kept endedKept: a wait meanwhile is handed the
// outcome at once and ended, where it found the ticket let go and read
// the stored state (two round trips). Then it is let go.
func TestAnOutcomeBeforeAnyWaitIsKeptAMoment(t *testing.T) {
	t.Parallel()
	st, clk, ticks, _ := newHandStack(t)
	tick := func() { ticks <- clk.Now() }
	tk := events.Ticket{TicketID: "t1", PlayerID: "pat", Mode: "1v1", CreatedAt: clk.Now()}
	if err := st.tr.Track(t.Context(), &tk, &Creation{Mode: tk.Mode, Players: tk.Players()}); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(st.tr.met.tracked); n != 1 {
		t.Fatalf("%v tickets waiting, want 1", n)
	}
	st.tell(t, "t1", "pat", events.StatusAssigned)
	testkit.Eventually(t, 5*time.Second, func() bool {
		return testutil.ToFloat64(st.tr.met.outcomes.WithLabelValues(string(events.StatusAssigned))) == 1
	}, "the outcome was never heard")
	// Kept, but not waiting: the gauge says what has no outcome yet.
	if n := testutil.ToFloat64(st.tr.met.tracked); n != 0 {
		t.Fatalf("%v tickets waiting once the only one's outcome came, want 0", n)
	}
	for _, after := range []time.Duration{0, endedKept / 2} {
		clk.add(after)
		tick()
		w, err := st.tr.Wait(t.Context(), "t1", "")
		if err != nil {
			t.Fatalf("a wait %v after the outcome: %v, want it handed", after, err)
		}
		if r := await(t, w, "the outcome"); r.Status != events.StatusAssigned || w.Creation == nil {
			t.Fatalf("a wait %v after the outcome got %+v (creation %v)", after, r, w.Creation)
		}
		ended(t, w, "a wait after the outcome")
	}
	clk.add(endedKept / 2)
	tick()
	if _, err := st.tr.Wait(t.Context(), "t1", ""); !errors.Is(err, ErrNotTracked) {
		t.Fatalf("a wait endedKept after the outcome: %v, want ErrNotTracked (let go)", err)
	}
	if n := testutil.ToFloat64(st.tr.met.tracked); n != 0 {
		t.Fatalf("%v tickets waiting once it was let go, want 0", n)
	}
}
