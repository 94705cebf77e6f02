package tracing_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
)

// Off by default: with no OTLP endpoint, Setup makes no spans, and Start
// leaves the ctx (and the client's traceparent in it) as it came, without
// allocating: the hot path pays nothing.
func TestOffByDefault(t *testing.T) {
	t.Setenv(tracing.EnvEndpoint, "")
	t.Setenv(tracing.EnvTracesEndpoint, "")
	shutdown, err := tracing.Setup(context.Background(), "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	if tracing.Enabled() {
		t.Fatal("tracing on with no endpoint")
	}
	in := events.WithMeta(context.Background(), events.Meta{CorrelationID: "c", TraceParent: client})
	out, span := tracing.Start(in, tracing.SpanCreate)
	if out != in || span.IsRecording() {
		t.Fatal("Start changed ctx or recorded while off")
	}
	allocs := testing.AllocsPerRun(100, func() {
		_, s := tracing.Start(in, tracing.SpanCreate)
		s.End()
	})
	if allocs != 0 {
		t.Errorf("Start allocates %v times while off, want 0", allocs)
	}
}

func TestSetupOnWithEndpoint(t *testing.T) {
	t.Setenv(tracing.EnvEndpoint, "http://127.0.0.1:1") // nothing listens: spans are dropped
	shutdown, err := tracing.Setup(context.Background(), "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if !tracing.Enabled() {
		t.Fatal("tracing off with an endpoint set")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a shutdown that cannot reach the collector must still return
	_ = shutdown(ctx)
	if tracing.Enabled() {
		t.Error("tracing still on after shutdown")
	}
}

func BenchmarkStartOff(b *testing.B) {
	tracing.Install(nil)
	ctx := events.WithMeta(context.Background(), events.Meta{CorrelationID: "c", TraceParent: client})
	b.ReportAllocs()
	for b.Loop() {
		_, s := tracing.Start(ctx, tracing.SpanCreate)
		s.End()
	}
}

func TestDocument(t *testing.T) {
	var out strings.Builder
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(&out)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), "flags") }
	tracing.Document(fs)
	if err := fs.Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "flags\n") || !strings.Contains(got, tracing.EnvEndpoint) {
		t.Fatalf("help %q: want the flags, then the tracing variables", got)
	}
}

// OTEL_SDK_DISABLED=true wins over an endpoint, as the SDK's
// specification says.
func TestSetupDisabled(t *testing.T) {
	t.Setenv(tracing.EnvEndpoint, "http://127.0.0.1:1")
	t.Setenv("OTEL_SDK_DISABLED", "true")
	shutdown, err := tracing.Setup(context.Background(), "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = shutdown(context.Background()) }()
	if tracing.Enabled() {
		t.Fatal("tracing on with OTEL_SDK_DISABLED=true")
	}
}
