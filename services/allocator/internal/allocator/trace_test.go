package allocator

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing/tracingtest"
)

// TestAllocateSpan: a match published with its commit span's traceparent
// is allocated in an "allocate" span, child of that span, and each
// player's play URL carries the allocate span on to the game server's
// join (play.ParamTrace), as do the headers of the assigned results.
// (Not parallel: it installs the process's tracer.)
func TestAllocateSpan(t *testing.T) {
	rec := tracingtest.Record(t)

	p := newPartitioned(t, false)
	p.backend.free.Store(1)
	const commit = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	data, _ := json.Marshal(pair("m-traced"))
	msg := message.NewMessage("m-traced-1", data)
	msg.Metadata.Set(events.HeaderTraceParent, commit)
	msg.Metadata.Set(events.HeaderCorrelationID, "corr-1")
	if _, err := p.handler(msg); err != nil {
		t.Fatal(err)
	}

	allocs := tracingtest.Named(rec, tracing.SpanAllocate)
	if len(allocs) != 1 {
		t.Fatalf("%d allocate spans, want 1", len(allocs))
	}
	alloc := allocs[0]
	if !slices.Contains(alloc.Attributes(), attribute.String(tracing.AttrMatchID, "m-traced")) {
		t.Errorf("allocate span's attributes %v, want %s m-traced", alloc.Attributes(), tracing.AttrMatchID)
	}
	if alloc.Parent().SpanID().String() != "00f067aa0ba902b7" || alloc.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("allocate span's parent %v, want the match's commit span", alloc.Parent())
	}
	want := tracing.Format(alloc.SpanContext())
	results := storedMsgs(t, p.js, p.subj.ResultsStream())
	if len(results) != 2 {
		t.Fatalf("%d results, want 2 assigned", len(results))
	}
	for _, data := range results {
		r, err := events.DecodeResult(data)
		if err != nil {
			t.Fatal(err)
		}
		_, j, err := play.ParseURL(r.Assignment.URL)
		if err != nil || j.Trace != want {
			t.Errorf("play URL %s carries traceparent %q, want the allocate span's %s", r.Assignment.URL, j.Trace, want)
		}
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return len(p.results()) == 2 }, "results not received")
	for _, m := range p.results() {
		if got := events.MetaFromHeader(m.Header); got.TraceParent != want || got.CorrelationID != "corr-1" {
			t.Errorf("result %s carries %+v, want the allocate span and corr-1", m.Subject, got)
		}
	}
}
