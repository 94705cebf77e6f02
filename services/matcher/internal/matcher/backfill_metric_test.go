package matcher

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// backfillCounts are the backfill request counter's values, by outcome.
func backfillCounts(c *prometheus.CounterVec) map[string]float64 {
	out := map[string]float64{}
	for _, o := range []string{"held", "filled", "expired", "replaced", "dropped"} {
		if v := testutil.ToFloat64(c.WithLabelValues(o)); v != 0 {
			out[o] = v
		}
	}
	return out
}

// TestBackfillRequestsCounted: a request past its mode's max wait on
// arrival is counted expired; room r1's first request held, then
// replaced by its next Ask, which is held and filled by the ticket that
// comes.
func TestBackfillRequestsCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	w := e.startWorker(t, Config{RulesFile: backfillRulesFile(t)})
	pub := events.NewPublisher(e.js, e.subj)
	stored := func() uint64 { return testkit.StreamMsgs(t, e.js, e.subj.BackfillsStream()) }
	old := roomRequest("r0-b1", time.Now().UTC().Add(-3*time.Minute))
	old.MatchID = "r0"
	for i, req := range []events.Backfill{old, roomRequest("r1-b1", time.Now().UTC())} {
		if err := pub.Backfill(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 10*time.Second, func() bool { return stored() == uint64(i) }, "request %s not taken in", req.BackfillID)
	}
	next := roomRequest("r1-b2", time.Now().UTC())
	next.Ask = 2
	if err := pub.Backfill(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return stored() == 1 }, "room r1's first request not let go")
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"tp","player_id":"p","mode":"2v2","skill":1650,"attributes":{"strings":{"platform":"pc"}}}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 1 && stored() == 0 }, "room r1's request not filled")
	want := map[string]float64{"held": 2, "replaced": 1, "filled": 1, "expired": 1}
	testkit.Eventually(t, 5*time.Second, func() bool {
		got := backfillCounts(w.w.met.backfills)
		return len(got) == len(want) && got["held"] == 2 && got["replaced"] == 1 && got["filled"] == 1 && got["expired"] == 1
	}, "backfill requests counted %v, want %v", backfillCounts(w.w.met.backfills), want)
}

// TestBackfillRequestsLetGoCounted: a sweep lets go a held request past
// its mode's max wait (expired) and one whose mode a reload closed to
// backfill (dropped).
func TestBackfillRequestsLetGoCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.backfillRunner(t)
	now := time.Now().UTC()
	hold(r, roomRequest("r1-b1", now.Add(-2*time.Minute)), "r1")
	r.fillBackfills(t.Context(), now)
	p := r.pools["2v2"]
	closed := *p.Mode()
	closed.AcceptsBackfill = false
	req := roomRequest("r2-b1", now)
	req.MatchID = "r2"
	hold(r, req, "r2")
	p.SetMode(&closed)
	r.fillBackfills(t.Context(), now)
	if got := backfillCounts(r.met.backfills); len(got) != 2 || got["expired"] != 1 || got["dropped"] != 1 {
		t.Fatalf("backfill requests counted %v, want 1 expired and 1 dropped", got)
	}
	if len(r.backfills) != 0 {
		t.Fatalf("%d requests still held", len(r.backfills))
	}
}
