package tracing_test

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing/tracingtest"
)

// client is a traceparent as a browser or game client would send it.
const client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestStartKeepsClientTrace(t *testing.T) {
	rec := tracingtest.Record(t)
	ctx := events.WithMeta(context.Background(), events.Meta{CorrelationID: "c1", TraceParent: client})
	ctx, span := tracing.Start(ctx, tracing.SpanCreate)
	span.End()

	sc := span.SpanContext()
	if got := sc.TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("trace id %s, want the client's", got)
	}
	ended := rec.Ended()
	if len(ended) != 1 || ended[0].Parent().SpanID().String() != "00f067aa0ba902b7" || !ended[0].Parent().IsRemote() {
		t.Fatalf("span's parent is not the client's span: %+v", ended)
	}
	m := events.MetaFrom(ctx)
	if m.CorrelationID != "c1" {
		t.Errorf("correlation id %q, want c1", m.CorrelationID)
	}
	if m.TraceParent != tracing.Format(sc) || !strings.Contains(m.TraceParent, sc.SpanID().String()) {
		t.Errorf("Meta.TraceParent %q does not name the new span %s", m.TraceParent, sc.SpanID())
	}
	var corr string
	for _, a := range ended[0].Attributes() {
		if string(a.Key) == tracing.AttrCorrelationID {
			corr = a.Value.AsString()
		}
	}
	if corr != "c1" {
		t.Errorf("span attribute %s = %q, want c1", tracing.AttrCorrelationID, corr)
	}
}

// A span started in one service continues, through a NATS message's
// headers, as the parent of the next service's span.
func TestPropagatesThroughMessage(t *testing.T) {
	rec := tracingtest.Record(t)
	ctx := events.WithMeta(context.Background(), events.Meta{CorrelationID: "c2"})
	ctx, first := tracing.Start(ctx, tracing.SpanCreate)
	msg, err := events.NewMsg(ctx, "matchmaking.eu.gold", "t1", map[string]string{"ticket_id": "t1"})
	if err != nil {
		t.Fatal(err)
	}
	first.End()

	got := events.MetaFromHeader(msg.Header)
	if got.CorrelationID != "c2" || got.TraceParent != tracing.Format(first.SpanContext()) {
		t.Fatalf("headers carry %+v, want c2 and the first span", got)
	}
	_, second := tracing.Start(events.WithMeta(context.Background(), got), tracing.SpanWait)
	second.End()
	if second.SpanContext().TraceID() != first.SpanContext().TraceID() {
		t.Fatal("the receiver's span is in another trace")
	}
	ended := rec.Ended()
	if len(ended) != 2 || ended[1].Parent().SpanID() != first.SpanContext().SpanID() {
		t.Fatalf("the receiver's span is not a child of the sender's: %+v", ended)
	}
}

// An OpenTelemetry span in ctx wins over the Meta's traceparent.
func TestStartPrefersSpanInContext(t *testing.T) {
	tracingtest.Record(t)
	ctx, parent := tracing.Start(context.Background(), tracing.SpanAllocate)
	ctx = events.WithMeta(ctx, events.Meta{TraceParent: client})
	_, child := tracing.Start(ctx, "sign")
	if child.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Fatal("the child left its parent's trace for the Meta's")
	}
}

func TestLinkAndRemote(t *testing.T) {
	cases := []struct {
		name, tp string
		ok       bool
	}{
		{"valid", client, true},
		{"empty", "", false},
		{"garbage", "not-a-traceparent", false},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"bad version", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"later version, long tail", "01" + client[2:] + "-" + strings.Repeat("x", 1<<20), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, ok := tracing.Link(c.tp)
			if ok != c.ok {
				t.Fatalf("Link ok = %v, want %v", ok, c.ok)
			}
			if ok && tracing.Format(l.SpanContext)[2:54] != c.tp[2:54] {
				t.Errorf("link names %s, want %s", tracing.Format(l.SpanContext), c.tp)
			}
			base := context.Background()
			ctx := tracing.Remote(base, c.tp)
			if !c.ok {
				if ctx != base {
					t.Error("Remote changed ctx for a traceparent that does not parse")
				}
				return
			}
			sc := trace.SpanContextFromContext(ctx)
			if !sc.IsRemote() || sc.TraceID() != l.SpanContext.TraceID() {
				t.Errorf("Remote's parent %v, want the remote span of %s", sc, c.tp)
			}
			// The Meta holds the bounded form, whatever tail came: a later
			// publish with ctx must not carry a player's megabyte.
			if got := events.MetaFrom(ctx).TraceParent; got != tracing.Format(sc) {
				t.Errorf("Remote's Meta names %.80q, want %s", got, tracing.Format(sc))
			}
		})
	}
}

func TestLinksReachTickets(t *testing.T) {
	rec := tracingtest.Record(t)
	l, ok := tracing.Link(client)
	if !ok {
		t.Fatal("client traceparent does not parse")
	}
	_, span := tracing.Start(context.Background(), tracing.SpanCommit, trace.WithLinks(l))
	span.End()
	links := rec.Ended()[0].Links()
	if len(links) != 1 || links[0].SpanContext.TraceID() != l.SpanContext.TraceID() {
		t.Fatalf("links %+v, want the ticket's span", links)
	}
}
