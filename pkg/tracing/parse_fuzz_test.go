package tracing_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
)

// FuzzTraceParent holds the one traceparent parser (events'
// ParseTraceParent, behind Meta.Bounded, Meta.TraceID and tracing.Link)
// to the OpenTelemetry propagator's reading, on any input: whatever
// Bounded keeps, Link parses and the propagator accepts, and the other
// way round, naming the same trace and span; what Bounded keeps reads the
// same again (a header passed on is as its first reader read it).
func FuzzTraceParent(f *testing.F) {
	for _, s := range []string{
		client,
		"01" + client[2:] + "-later-fields",
		"01" + client[2:] + "x",
		client[:53] + "ff", // reserved flags: version 00 refuses them
		client[:53] + "03",
		"01" + client[2:53] + "ff",
		"ff" + client[2:],
		"fe" + client[2:],
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		client + "-",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tp string) {
		kept := events.Meta{TraceParent: tp}.Bounded().TraceParent
		l, linked := tracing.Link(tp)
		otel := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
			propagation.MapCarrier{"traceparent": tp}))
		// One leniency of the propagator's, not followed: it takes a
		// version-00 value with an empty fifth field ("...-01-"), which
		// the W3C format (exactly 55 bytes for version 00) refuses.
		lenient := len(tp) == 56 && tp[:2] == "00" && tp[55] == '-'
		if (kept != "") != linked || (linked != otel.IsValid() && !lenient) {
			t.Fatalf("%q: Bounded keeps %q, Link parses %v, the OpenTelemetry propagator %v", tp, kept, linked, otel.IsValid())
		}
		if !linked {
			return
		}
		if l.SpanContext.TraceID() != otel.TraceID() || l.SpanContext.SpanID() != otel.SpanID() || l.SpanContext.TraceFlags() != otel.TraceFlags() {
			t.Fatalf("%q: Link names %v, the propagator %v", tp, l.SpanContext, otel)
		}
		if id, ok := (events.Meta{TraceParent: tp}).TraceID(); !ok || id != l.SpanContext.TraceID() {
			t.Fatalf("%q: Meta.TraceID = %x %v, want %s", tp, id, ok, l.SpanContext.TraceID())
		}
		if again := (events.Meta{TraceParent: kept}).Bounded().TraceParent; again != kept {
			t.Fatalf("%q: Bounded of %q is %q", tp, kept, again)
		}
	})
}
