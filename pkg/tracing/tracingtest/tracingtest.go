// Package tracingtest records the spans of pkg/tracing in a test.
package tracingtest

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
)

// Record installs a provider that keeps its spans in memory until the
// test ends, then turns tracing off again. The provider is the process's
// (tracing.Install), so a test that calls it must not run in parallel.
func Record(tb testing.TB) *tracetest.SpanRecorder {
	tb.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tracing.Install(tp)
	tb.Cleanup(func() {
		tracing.Install(nil)
		_ = tp.Shutdown(context.Background())
	})
	return rec
}

// Named is the ended spans of rec called name, in the order they ended.
func Named(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}
