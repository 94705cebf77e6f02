package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
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

// refusing is a backend whose every answer is a permanent refusal with
// text (a Kubernetes API's body, say), counting its calls.
type refusing struct {
	text  string
	calls atomic.Int32
}

func (r *refusing) Allocate(context.Context, events.Match) (Server, error) {
	r.calls.Add(1)
	return Server{}, Permanent(errors.New(r.text))
}

// TestPlayersAreToldNoBackendText: a backend refuses a match with a long
// text of its own (four clusters' Kubernetes answers, each with its
// cluster's name and address, run to kilobytes, and JSON escapes '<' six
// bytes long). The players are told the failure in our words, short,
// which the match's record keeps; the dead letter keeps the backend's
// text for the operator. (With the text itself as the reason, the
// record outgrew the allocations bucket's largest value: the match was
// nakked, asked of the backend again on every delivery, and never told.)
func TestPlayersAreToldNoBackendText(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	backend := &refusing{text: "cluster eu-1 at https://10.1.2.3:6443 refused: " + strings.Repeat("<", 4096)}
	p.as.records.backend = backend
	m := pair("m-refused")
	if err := p.deliver(m, 1); err != nil {
		t.Fatal(err)
	}
	if err := p.deliver(m, 2); err != nil { // a repeat: its ack lost
		t.Fatal(err)
	}
	if c := backend.calls.Load(); c != 1 {
		t.Fatalf("the backend was asked %d times for one match", c)
	}
	stored := storedMsgs(t, p.js, p.subj.ResultsStream())
	if len(stored) != 2 {
		t.Fatalf("%d results stored, want each player's one", len(stored))
	}
	for _, data := range stored {
		r, err := events.DecodeResult(data)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != events.StatusFailed || r.Reason != errNotAllocated.Error() {
			t.Fatalf("a player told %s %q, want failed %q", r.Status, r.Reason, errNotAllocated)
		}
	}
	if d := p.deadLetters(t); d < 1 { // one a delivery here: the handler's deliveries carry no stream sequence to dedupe by
		t.Fatalf("%d dead letters", d)
	}
	var dl events.DeadLetter
	if err := json.Unmarshal(storedMsgs(t, p.js, p.subj.DeadLetterStream())[0], &dl); err != nil || !strings.Contains(dl.Reason, "10.1.2.3") {
		t.Fatalf("dead letter %q (%v): want the backend's text", dl.Reason, err)
	}
}

// failingMeanwhile is a backend with no capacity, during whose call
// another request for the match fails it (its record marked failed).
type failingMeanwhile struct {
	records *records
	reason  string
}

func (f *failingMeanwhile) Allocate(ctx context.Context, m events.Match) (Server, error) {
	data, _ := json.Marshal(record{Failed: true, Reason: f.reason})
	if _, err := f.records.kv.Put(ctx, m.MatchID, data); err != nil {
		return Server{}, err
	}
	return Server{}, ErrNoCapacity
}

// TestARequeueMeetingAFailedRecordTellsIt: with requeues on, a match
// with no server is to be queued again, but another request failed it
// meanwhile (its record says so, and why). It cannot be queued again:
// its players are told it failed, in the words its record keeps, at
// once (it used to be nakked, and told only on its next delivery).
func TestARequeueMeetingAFailedRecordTellsIt(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, true)
	p.as.records.backend = &failingMeanwhile{records: p.as.records, reason: ErrModeNotHosted.Error()}
	if err := p.deliver(pair("m-failed-meanwhile"), 1); err != nil {
		t.Fatalf("a match failed meanwhile: %v, want it told and acked", err)
	}
	n := p.told(t)
	for _, data := range storedMsgs(t, p.js, p.subj.ResultsStream()) {
		if r, _ := events.DecodeResult(data); r.Reason != ErrModeNotHosted.Error() {
			t.Fatalf("a player told %q, want the record's %q", r.Reason, ErrModeNotHosted)
		}
	}
	if n[events.StatusFailed] != 2 || len(n) != 1 {
		t.Fatalf("results %v, want 2 failed", n)
	}
}
