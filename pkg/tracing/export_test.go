package tracing_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
)

// export runs Setup against a test collector, makes the spans of fn and
// shuts the provider down (its flush sends them), and returns what the
// collector received.
func export(t *testing.T, fn func()) []testkit.Span {
	t.Helper()
	col := testkit.StartOTLPCollector(t)
	t.Setenv(tracing.EnvEndpoint, col.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "600000") // only the shutdown's flush sends it
	shutdown, err := tracing.Setup(context.Background(), "frontend", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	fn()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return col.Spans()
}

// TestSetupExports: with OTEL_EXPORTER_OTLP_ENDPOINT set, Setup exports
// over OTLP/HTTP (protobuf on /v1/traces), the service named in
// service.name, and its shutdown flushes what is still buffered.
func TestSetupExports(t *testing.T) {
	spans := export(t, func() {
		ctx := events.WithMeta(context.Background(), events.Meta{TraceParent: client})
		_, span := tracing.Start(ctx, tracing.SpanCreate)
		span.End()
	})
	if len(spans) != 1 || spans[0].Name != tracing.SpanCreate || spans[0].Service != "frontend" {
		t.Fatalf("collector received %v, want span create of service frontend", spans)
	}
}

// TestSetupBoundsAttributes: a span attribute's value is cut to
// MaxAttributeBytes, whatever length a player sent (the SDK's default
// keeps it whole), unless the SDK's variable sets another bound.
func TestSetupBoundsAttributes(t *testing.T) {
	huge := strings.Repeat("m", 1<<20)
	for _, tc := range []struct {
		name, env string
		want      int
	}{
		{"default", "", tracing.MaxAttributeBytes},
		{"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "1000", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(tc.name, tc.env)
			}
			spans := export(t, func() {
				_, span := tracing.Start(context.Background(), tracing.SpanJoin,
					trace.WithAttributes(attribute.String(tracing.AttrMatchID, huge)))
				span.End()
			})
			if len(spans) != 1 {
				t.Fatalf("collector received %v, want one span", spans)
			}
			if got := len(spans[0].Attrs[tracing.AttrMatchID]); got != tc.want {
				t.Errorf("attribute exported with %d bytes, want %d", got, tc.want)
			}
		})
	}
}
