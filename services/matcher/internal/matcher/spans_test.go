package matcher

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing/tracingtest"
)

// pubTicket publishes a 1v1 ticket of player in eu.gold with meta in its
// headers (none when empty), as a frontend does.
func (e *env) pubTicket(t *testing.T, id, player string, meta events.Meta) {
	t.Helper()
	msg, err := events.NewMsg(events.WithMeta(t.Context(), meta), e.subj.Ticket("eu", "gold"), id,
		map[string]any{"ticket_id": id, "player_id": player, "skill": 1800})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
}

// publishedMatch waits for the one match in the allocations stream and
// returns it with its message's headers.
func publishedMatch(t *testing.T, allocs func() []*nats.Msg) (events.Match, nats.Header) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 1 }, "no allocation request")
	msg := allocs()[0]
	return matches(t, []*nats.Msg{msg})[0], msg.Header
}

// TestMatchCarriesACorrelationID: a match is published with a
// correlation id, the first of its tickets' (in the match's order), and
// its players' "matched" results with it; a match of tickets with none
// gets one of its own. Before, the allocator logged correlation_id=""
// for every match.
func TestMatchCarriesACorrelationID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		corrs map[string]string // by ticket id
	}{
		{"tickets with ids", map[string]string{"ta": "corr-a", "tb": "corr-b"}},
		{"tickets without", map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.startWorker(t, Config{})
			allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
			res := testkit.Collect(t, e.nc, e.subj.AllResults())
			e.pubTicket(t, "ta", "alice", events.Meta{CorrelationID: tc.corrs["ta"]})
			e.pubTicket(t, "tb", "bob", events.Meta{CorrelationID: tc.corrs["tb"]})
			m, h := publishedMatch(t, allocs)
			got := h.Get(events.HeaderCorrelationID)
			if want := tc.corrs[m.Tickets[0].TicketID]; got == "" || (want != "" && got != want) {
				t.Fatalf("match published with correlation id %q, want %q (its first ticket's, or a new one)", got, want)
			}
			testkit.Eventually(t, 5*time.Second, func() bool { return len(res()) == 2 }, "want 2 matched results")
			for _, r := range res() {
				if c := r.Header.Get(events.HeaderCorrelationID); c != got {
					t.Errorf("result on %s has correlation id %q, want the match's %q", r.Subject, c, got)
				}
			}
		})
	}
}

// TestSpansOfAMatch: with tracing on, each ticket's stint in the pool is
// a "wait" span, child of the trace its message came with, starting when
// it entered the pool; the match's "commit" span links to both, and the
// match is published with the commit span's traceparent. Not parallel:
// it installs the process's tracer.
func TestSpansOfAMatch(t *testing.T) {
	rec := tracingtest.Record(t)
	e := newEnv(t)
	e.startWorker(t, Config{})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	parents := map[string]string{ // ticket id -> the span id of its client's traceparent
		"ta": "00f067aa0ba902b7", "tb": "00f067aa0ba902b8",
	}
	before := time.Now()
	for id, span := range parents {
		tp := fmt.Sprintf("00-4bf92f3577b34da6a3ce929d0e0e47%s-%s-01", map[string]string{"ta": "36", "tb": "37"}[id], span)
		e.pubTicket(t, id, "p"+id, events.Meta{CorrelationID: "corr-" + id, TraceParent: tp})
	}
	m, h := publishedMatch(t, allocs)

	var commit sdktrace.ReadOnlySpan
	testkit.Eventually(t, 5*time.Second, func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == "commit" {
				commit = s
			}
		}
		return commit != nil
	}, "no commit span")
	if got, want := h.Get(events.HeaderTraceParent), tracing.Format(commit.SpanContext()); got != want {
		t.Errorf("match published with traceparent %q, want the commit span's %q", got, want)
	}
	if got := h.Get(events.HeaderCorrelationID); got != "corr-"+m.Tickets[0].TicketID {
		t.Errorf("match published with correlation id %q, want its first ticket's", got)
	}
	waits := map[string]sdktrace.ReadOnlySpan{} // by parent span id
	for _, s := range rec.Ended() {
		if s.Name() == "wait" {
			waits[s.Parent().SpanID().String()] = s
		}
	}
	linked := map[string]bool{}
	for _, l := range commit.Links() {
		linked[l.SpanContext.SpanID().String()] = true
	}
	for id, parent := range parents {
		w, ok := waits[parent]
		if !ok || !w.Parent().IsRemote() {
			t.Errorf("ticket %s: no wait span child of its client's span %s", id, parent)
			continue
		}
		if w.StartTime().Before(before) || w.EndTime().Before(w.StartTime()) || w.EndTime().After(commit.EndTime()) {
			t.Errorf("ticket %s: wait span from %v to %v, want from its entry in the pool (after %v) to its match", id, w.StartTime(), w.EndTime(), before)
		}
		if !linked[w.SpanContext().SpanID().String()] {
			t.Errorf("ticket %s: its wait span is not linked from the commit span", id)
		}
	}
}
