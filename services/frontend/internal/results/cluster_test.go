package results

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestCatchUpReadsTheLeaderNotALaggingReplica: a 3-node cluster, RESULTS
// replicated on all three, its leader not on n3. The tracker is on n3
// (in n3's zone: it does not move to the others). n3 is cut off from the
// others while a result is stored, the tracker's connection drops, and
// it reconnects to n3. The first catch-up read with direct gets, which
// n3's replica answered: "nothing more", without the result, and the
// catch-up ended as done (review r2, finding 1: 2 of 2 runs). Read from
// the leader, a catch-up fails while n3 is cut off, and once the cut
// heals the next one finds the result.
//
// testkit.RunCluster routes its nodes directly; here every route goes
// through a testkit.Link, so that n3 can be cut off.
func TestCatchUpReadsTheLeaderNotALaggingReplica(t *testing.T) {
	t.Parallel()
	c, js := linkedCluster(t)
	testkit.PlaceLeader(t, js, js.Conn(), "RESULTS", 2, false)
	link := testkit.NewLink(t, strings.TrimPrefix(c.Servers[2].ClientURL(), "nats://"))
	nc := testkit.ConnectURL(t, link.URL(), nats.ReconnectWait(20*time.Millisecond), nats.MaxReconnects(-1), nats.IgnoreDiscoveredServers())
	log := &logBuffer{}
	tr := New(nc, events.Subjects{}, slog.New(slog.NewTextHandler(log, nil)), prometheus.NewRegistry(),
		func(string) time.Duration { return time.Hour }, func(context.Context, string) Retry { return RetryNone })
	// Ticks come fast: a catch-up that failed is retried at once, so one
	// runs the moment n3 answers again, before its replica caught up.
	ticks := make(chan time.Time)
	tr.ticks = ticks
	testkit.Run(t, tr.Run)
	go tickEvery(t, ticks, 20*time.Millisecond)
	st := &stack{tr: tr, pub: events.NewPublisher(js, events.Subjects{}), nc: nc}
	w := st.track(t, t.Context(), "lost", "p1")
	// Told until heard: the tracker's interest, made on n3, reaches the
	// publisher's node over a route a moment later (on a loaded machine,
	// after the first telling, which core NATS then delivers to nobody).
	testkit.Eventually(t, 30*time.Second, func() bool {
		// A publish the three nodes did not store in time (CI: "context
		// deadline exceeded" under load) is told again, as one unheard.
		if err := st.tryTell(t, "lost", "p1", events.StatusQueued); err != nil {
			t.Logf("told queued: %v; again", err)
			return false
		}
		select {
		case r := <-w.Results:
			if r.Status != events.StatusQueued {
				t.Fatal(r.Status)
			}
			return true
		case <-time.After(200 * time.Millisecond):
			return false
		}
	}, "queued: not heard")
	c.Cut(2)
	st.tell(t, "lost", "p1", events.StatusAssigned) // stored by n1 and n2
	reconnects := nc.Stats().Reconnects
	link.Drop()
	testkit.Eventually(t, 15*time.Second, func() bool { return nc.Stats().Reconnects > reconnects && nc.IsConnected() }, "not reconnected")
	if name := nc.ConnectedServerName(); name != "n3" {
		t.Fatalf("tracker reconnected to %s, want n3", name)
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		return testutil.ToFloat64(tr.met.catchUps.WithLabelValues("reconnect")) >= 1
	}, "no catch-up")
	// The catch-up runs while n3 is cut off: read from the leader, it
	// fails; read from n3's replica, it may fail (no answer) or end
	// without the result. Healed once one failed, or after 10 s.
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && !strings.Contains(log.String(), "trying again"); {
		time.Sleep(50 * time.Millisecond)
	}
	c.Heal(2) // the cut outlasted the routes' pings: what they held is lost
	deadline := time.After(30 * time.Second)
	for {
		select {
		case r, ok := <-w.Results:
			if ok && r.Status == events.StatusQueued {
				continue // a late copy of a telling above
			}
			if !ok || r.Status != events.StatusAssigned {
				t.Fatalf("got %+v (open %v), want assigned", r, ok)
			}
			return
		case <-deadline:
			t.Fatalf("assigned, stored while the tracker's node was cut off, never reached the waiter; log:\n%s", log.String())
		}
	}
}

// linkedCluster starts a 3-node cluster whose routes each go through a
// link, provisioned with every stream on 3 replicas.
func linkedCluster(t *testing.T) (*testkit.LinkedCluster, jetstream.JetStream) {
	t.Helper()
	c := testkit.RunLinkedCluster(t)
	// The test's own connection stays off n3.
	nc := testkit.ConnectURL(t, c.URLs(0, 1))
	js := testkit.JetStream(t, nc)
	testkit.Eventually(t, 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		return events.Provision(ctx, js, events.Topology{Replicas: 3}) == nil
	}, "not provisioned")
	return c, js
}
