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
func TestJoinContinuesAllocationTrace(t *testing.T) {
	rec := tracingtest.Record(t)

	const alloc = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	_, hs := startServer(t, Config{MaxRooms: 4})
	base := "ws" + strings.TrimPrefix(hs.URL, "http")
	ok := play.SocketURL(base, play.Join{MatchID: "traced", Token: token(t, "traced", "p1", time.Minute), Trace: alloc})
	c, _, err := websocket.DefaultDialer.Dial(ok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bad := play.SocketURL(base, play.Join{MatchID: strings.Repeat("m", 64<<10), Token: "forged", Trace: alloc})
	if c2, _, err := websocket.DefaultDialer.Dial(bad, nil); err == nil {
		c2.Close()
		t.Fatal("a forged token joined")
	}

	spans := joinSpans(t, rec, 2)
	for _, s := range spans {
		if s.Parent().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent().SpanID().String() != "00f067aa0ba902b7" {
			t.Errorf("join span's parent %v, want the allocation's span", s.Parent())
		}
	}
	if spans[0].Status().Code == spans[1].Status().Code {
		t.Errorf("the seated and the refused join have the same status %v", spans[0].Status())
	}
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
		seated := s.Status().Code != codes.Error
		if seated && matchID != "traced" || !seated && matchID != "" {
			t.Errorf("join span (seated %v) has %s %.40q, want the granted match id on the seated one only", seated, tracing.AttrMatchID, matchID)
		}
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
