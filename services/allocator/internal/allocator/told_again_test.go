package allocator

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestARetryCountsItsMatchOnce: a try whose results were lost in a cut
// is retried within its delivery, and the retry finds the server its
// first try recorded. That is one match assigned, allocated once: the
// metrics count it once ("assigned"), where the retry used to count it
// again as "reused", with a second allocation time. A later delivery of
// the same match (its ack lost) is a repeat, and counts as one.
func TestARetryCountsItsMatchOnce(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	p.backend.free.Store(1)
	lossy := &lossyJS{JetStream: p.js}
	lossy.lost.Store(2) // both players' results, on the first try
	p.as.pub = events.NewPublisher(lossy, p.subj)
	m := pair("m-counted-once")
	msg := nthDelivery(m, 1)
	if _, err := p.handler(msg); !unavailable(err) {
		t.Fatalf("a try whose results were lost: %v, want NATS unanswered", err)
	}
	if _, err := p.handler(msg); err != nil { // the Retry middleware's next try
		t.Fatal(err)
	}
	met := p.as.met
	if a, r := testutil.ToFloat64(met.outcomes.WithLabelValues("assigned")), testutil.ToFloat64(met.outcomes.WithLabelValues("reused")); a != 1 || r != 0 {
		t.Fatalf("after a retry: assigned %v, reused %v; want 1 and 0", a, r)
	}
	if c := histogramCount(t, met); c != 1 {
		t.Fatalf("%d allocation times observed for one allocation, want 1", c)
	}
	if err := p.deliver(m, 2); err != nil {
		t.Fatal(err)
	}
	if a, r := testutil.ToFloat64(met.outcomes.WithLabelValues("assigned")), testutil.ToFloat64(met.outcomes.WithLabelValues("reused")); a != 1 || r != 1 {
		t.Fatalf("after a repeat: assigned %v, reused %v; want 1 and 1", a, r)
	}
}

// histogramCount is how many allocation times met observed.
func histogramCount(t *testing.T, met *metrics) uint64 {
	t.Helper()
	var d dto.Metric
	if err := met.latency.Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetHistogram().GetSampleCount()
}

// TestAFailureToldLateKeepsItsReason: a match that failed (no game
// server) and whose "failed" results were lost in a cut is nakked; its
// next delivery finds the record marked failed and tells the players
// again. They hear why it failed, as they would have the first time,
// not "this match failed before"; and the failure is counted once, by
// its reason.
func TestAFailureToldLateKeepsItsReason(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	lossy := &lossyJS{JetStream: p.js}
	lossy.lost.Store(2) // both players' "failed", on the first delivery
	p.as.pub = events.NewPublisher(lossy, p.subj)
	p.fail.pub = p.as.pub
	m := pair("m-failed-late")
	if err := p.deliver(m, 1); err == nil {
		t.Fatal("a give-up whose results were lost was acked, want it nakked")
	}
	if err := p.deliver(m, 2); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, data := range storedMsgs(t, p.js, p.subj.ResultsStream()) {
		r, err := events.DecodeResult(data)
		if err != nil {
			t.Fatal(err)
		}
		reasons = append(reasons, string(r.Status)+": "+r.Reason)
	}
	if len(reasons) != 2 {
		t.Fatalf("results %q, want each player's one", reasons)
	}
	for _, r := range reasons {
		if !strings.Contains(r, ErrNoCapacity.Error()) || strings.Contains(r, "failed before") {
			t.Fatalf("players told %q, want the failure's own reason (%q)", reasons, ErrNoCapacity)
		}
	}
	met := p.fail.met
	if n, inv := testutil.ToFloat64(met.outcomes.WithLabelValues("failed_no_capacity")), testutil.ToFloat64(met.outcomes.WithLabelValues("failed_invalid")); n != 1 || inv != 0 {
		t.Fatalf("failures counted: no_capacity %v, invalid %v; want 1 and 0", n, inv)
	}
}
