package results

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestCatchUpIgnoresTheTrackersClock: the frontend's clock 10 s ahead of
// the NATS servers'. The first catch-up read the stream from a start
// time taken from the frontend's clock and compared with the leader's
// timestamps, so a result stored in the first 5 s of an outage was
// skipped (review r2, finding 3).
func TestCatchUpIgnoresTheTrackersClock(t *testing.T) {
	t.Parallel()
	missedWhileDisconnected(t, newStack(t, true, func(tr *Tracker) {
		tr.now = func() time.Time { return time.Now().Add(10 * time.Second) }
	}))
}

// TestCatchUpAfterRunFellBehind: Run far behind its subscription (a
// backlog in its channel) when the connection goes half-open. It takes
// the backlog long after the cut; the first catch-up started a margin
// before the last take, after the lost result was stored (review r2,
// finding 4). Run's clock is moved on by 7 s while it is held, as if it
// took that long.
func TestCatchUpAfterRunFellBehind(t *testing.T) {
	t.Parallel()
	var (
		stuck   atomic.Bool
		release = make(chan struct{})
		ticks   = make(chan time.Time)
		ahead   atomic.Int64
	)
	st := newStack(t, true, func(tr *Tracker) {
		tr.ticks = ticks
		tr.now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
		tr.waits = func(string) time.Duration { // asked on a tick: held there, Run takes nothing
			if stuck.Load() {
				<-release
			}
			return time.Hour
		}
	})
	var once sync.Once
	unstick := func() { once.Do(func() { stuck.Store(false); close(release) }) }
	t.Cleanup(unstick) // before Run's own: a failed test lets Run end
	w := st.track(t, t.Context(), "lost", "p1")
	st.tell(t, "lost", "p1", events.StatusQueued)
	if r := await(t, w, "queued"); r.Status != events.StatusQueued {
		t.Fatal(r.Status)
	}
	stuck.Store(true)
	ticks <- time.Now()
	in := st.nc.Stats().InMsgs
	for i := range 200 { // the backlog: other players' results
		st.tell(t, fmt.Sprintf("x%d", i), fmt.Sprintf("other%d", i), events.StatusQueued)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return st.nc.Stats().InMsgs >= in+200 }, "backlog not delivered")
	st.link.Cut(testkit.Down) // half-open: the tracker hears nothing more
	st.tell(t, "lost", "p1", events.StatusAssigned)
	ahead.Store(int64(7 * time.Second))
	unstick()
	testkit.Eventually(t, 10*time.Second, func() bool { return len(st.tr.msgs) == 0 }, "backlog not taken")
	reconnects := st.nc.Stats().Reconnects
	st.link.Drop()
	st.link.Heal()
	testkit.Eventually(t, 15*time.Second, func() bool { return st.nc.Stats().Reconnects > reconnects && st.nc.IsConnected() }, "not reconnected")
	go tickEvery(t, ticks, 100*time.Millisecond) // a catch-up that failed is retried on a tick
	if r := await(t, w, "assigned while half-open"); r.Status != events.StatusAssigned {
		t.Fatal(r.Status)
	}
}

// tickEvery sends ticks until the test ends.
func tickEvery(t *testing.T, ticks chan<- time.Time, d time.Duration) {
	for {
		select {
		case ticks <- time.Now():
		case <-t.Context().Done():
			return
		}
		time.Sleep(d)
	}
}

// TestCatchUpReadsOnlyTrackedTickets: after a reconnection the catch-up
// reads where the tracked tickets stand, not every player's results of
// the last seconds: 500 results of players nobody here follows are not
// read back (review r2, finding 5: a catch-up read back twice what was
// published; r1 F4: its floor never applied).
func TestCatchUpReadsOnlyTrackedTickets(t *testing.T) {
	t.Parallel()
	st := newStack(t, true, nil)
	w := st.track(t, t.Context(), "mine", "me")
	st.tell(t, "mine", "me", events.StatusQueued)
	if r := await(t, w, "queued"); r.Status != events.StatusQueued {
		t.Fatal(r.Status)
	}
	in := st.nc.Stats().InMsgs
	for i := range 500 {
		st.tell(t, fmt.Sprintf("x%d", i), fmt.Sprintf("other%d", i), events.StatusQueued)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return st.nc.Stats().InMsgs >= in+500 }, "results not delivered")
	st.link.Cut(testkit.Down)
	st.tell(t, "mine", "me", events.StatusAssigned)
	reconnects := st.nc.Stats().Reconnects
	st.link.Drop()
	before := st.nc.Stats().InMsgs
	st.link.Heal()
	testkit.Eventually(t, 15*time.Second, func() bool { return st.nc.Stats().Reconnects > reconnects && st.nc.IsConnected() }, "not reconnected")
	if r := await(t, w, "assigned while disconnected"); r.Status != events.StatusAssigned {
		t.Fatal(r.Status)
	}
	// One answer for the one tracked player, and a few for the
	// reconnection's own protocol; not the 500.
	if read := st.nc.Stats().InMsgs - before; read > 20 {
		t.Fatalf("the catch-up read %d messages for one tracked ticket", read)
	}
}

// TestCatchUpAsksOutcomesForATicketItsPlayerLeft: the player's last
// result is a newer ticket's; the older ticket, still tracked here, is
// read with Outcomes (the tickets service's OutcomeBehind in the
// frontend), told the sequence of that last result.
func TestCatchUpAsksOutcomesForATicketItsPlayerLeft(t *testing.T) {
	t.Parallel()
	type call struct {
		id, player string
		last       uint64
	}
	calls := make(chan call, 10)
	st := newStack(t, true, func(tr *Tracker) {
		tr.ReadOutcomesWith(func(_ context.Context, id, player string, last uint64) (*events.Result, error) {
			calls <- call{id, player, last}
			return &events.Result{TicketID: id, PlayerID: player, Status: events.StatusCancelled}, nil
		})
	})
	w := st.track(t, t.Context(), "old", "p1")
	st.tell(t, "old", "p1", events.StatusQueued)
	if r := await(t, w, "queued"); r.Status != events.StatusQueued {
		t.Fatal(r.Status)
	}
	st.link.Cut(testkit.Down)
	st.tell(t, "old", "p1", events.StatusCancelled)
	st.tell(t, "new", "p1", events.StatusQueued) // another frontend's
	reconnects := st.nc.Stats().Reconnects
	st.link.Drop()
	st.link.Heal()
	testkit.Eventually(t, 15*time.Second, func() bool { return st.nc.Stats().Reconnects > reconnects && st.nc.IsConnected() }, "not reconnected")
	if r := await(t, w, "cancelled while disconnected"); r.Status != events.StatusCancelled || r.TicketID != "old" {
		t.Fatalf("got %+v, want old cancelled", r)
	}
	stream, err := testkit.JetStream(t, testkit.Connect(t, st.srv)).Stream(t.Context(), "RESULTS")
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetLastMsgForSubject(t.Context(), "results.p1")
	if err != nil {
		t.Fatal(err)
	}
	var c call
	select {
	case c = <-calls:
	case <-time.After(15 * time.Second):
		t.Fatal("Outcomes not asked")
	}
	if c.id != "old" || c.player != "p1" || c.last != last.Sequence {
		t.Fatalf("Outcomes asked %+v, want old of p1 up to sequence %d", c, last.Sequence)
	}
}
