package server

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing/tracingtest"
)

// TestJoinContinuesAllocationTrace: a join whose URL carries the
// allocation's traceparent (play.ParamTrace) is a "join" span, child of
// the allocation's span, naming its room by the match id the token
// grants; a refused join is one too, marked failed, and copies nothing
// the unauthenticated request sent (its match id may be a megabyte).
// Nor does it take the traceparent it sent for its parent: anyone could
// hang spans on any trace, and under a parent-based sampler have it
// sampled or not. It starts a trace of its own, linked to the one it
// named, and sampled as any new trace is.
func TestJoinContinuesAllocationTrace(t *testing.T) {
	rec := tracingtest.Record(t)

	const alloc = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	_, hs := startServer(t, Config{MaxRooms: 4})
	base := "ws" + strings.TrimPrefix(hs.URL, "http")
	ok := play.SocketURL(base, play.Join{MatchID: "traced", Token: token(t, "traced", "p1", time.Minute), Trace: alloc})
	c, _, err := websocket.DefaultDialer.Dial(ok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	next(t, c, "welcome")
	for _, tp := range []string{alloc, unsampled} {
		bad := play.SocketURL(base, play.Join{MatchID: strings.Repeat("m", 64<<10), Token: "forged", Trace: tp})
		if c2, _, err := websocket.DefaultDialer.Dial(bad, nil); err == nil {
			c2.Close()
			t.Fatal("a forged token joined")
		}
	}

	spans := joinSpans(t, rec, 3)
	var seated int
	for _, s := range spans {
		var matchID string
		for _, a := range s.Attributes() {
			if a.Value.Type() == attribute.STRING && len(a.Value.AsString()) > 1000 {
				t.Errorf("join span copied the request's %d-byte %s", len(a.Value.AsString()), a.Key)
			}
			if a.Key == tracing.AttrMatchID {
				matchID = a.Value.AsString()
			}
		}
		parent := s.Parent()
		if s.Status().Code != codes.Error {
			seated++
			if matchID != "traced" || parent.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || parent.SpanID().String() != "00f067aa0ba902b7" {
				t.Errorf("seated join span: %s %q, parent %v; want the granted match id, the allocation's span", tracing.AttrMatchID, matchID, parent)
			}
			continue
		}
		if matchID != "" || parent.IsValid() || s.SpanContext().TraceID().String() == "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("refused join span: %s %.40q, parent %v; want no match id, a trace of its own", tracing.AttrMatchID, matchID, parent)
		}
		if links := s.Links(); len(links) != 1 || links[0].SpanContext.SpanID().String() != "00f067aa0ba902b7" {
			t.Errorf("refused join span's links %v, want the span its request named", links)
		}
	}
	if seated != 1 {
		t.Errorf("%d seated join spans of 3, want 1", seated)
	}
}

// joinSpans waits for n ended "join" spans: the server ends one after it
// answered the client.
func joinSpans(t *testing.T, rec *tracetest.SpanRecorder, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var out []sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			if s.Name() == tracing.SpanJoin && s.SpanKind() == trace.SpanKindServer {
				out = append(out, s)
			}
		}
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d join spans ended, want %d", len(out), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
