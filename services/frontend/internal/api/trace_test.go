package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing/tracingtest"
)

// TestCreateAndDeliverSpans: a WebSocket create sent with a client's
// traceparent is a "create" span, child of it, and the ticket is
// published naming that span; the assigned outcome written to the client
// is a "deliver" span, child of the allocation (the play URL's
// traceparent) and linked to the create span. (Not parallel: it installs
// the process's tracer.)
func TestCreateAndDeliverSpans(t *testing.T) {
	rec := tracingtest.Record(t)

	const (
		client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		alloc  = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	)
	e := start(t, options{})
	c, _, err := websocket.DefaultDialer.Dial(wsURL(t, e, "/ws?region=eu&skill=1650&player_id=traced"), http.Header{"Traceparent": {client}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var tk events.Ticket
	var meta events.Meta
	testkit.Eventually(t, 5*time.Second, func() bool {
		st, _ := e.js.Stream(t.Context(), e.subj.TicketsStream())
		raw, err := st.GetLastMsgForSubject(t.Context(), "matchmaking.eu.gold")
		if err != nil {
			return false
		}
		tk, _ = events.DecodeTicket(raw.Data)
		meta = events.MetaFromHeader(raw.Header)
		return tk.PlayerID == "traced"
	}, "no ticket queued for the WebSocket client")

	// The span ends once the create returns, after the publish.
	var create sdktrace.ReadOnlySpan
	testkit.Eventually(t, 5*time.Second, func() bool {
		spans := tracingtest.Named(rec, tracing.SpanCreate)
		if len(spans) > 0 {
			create = spans[0]
		}
		return create != nil
	}, "no create span")
	if create == nil || create.Parent().SpanID().String() != "00f067aa0ba902b7" || create.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("create span %v, want a child of the client's traceparent", create)
	}
	if meta.TraceParent != tracing.Format(create.SpanContext()) || meta.CorrelationID == "" {
		t.Fatalf("ticket published with %+v, want the create span %s and a correlation id", meta, tracing.Format(create.SpanContext()))
	}

	// The allocator's assigned result, its play URL carrying its span.
	if won, _, err := e.claims.Claim(t.Context(), tk.TicketID, events.MatchOwner("m1")); !won || err != nil {
		t.Fatalf("claim: %v %v", won, err)
	}
	url := play.Join{MatchID: "m1", Token: "x", Trace: alloc}.PageURL("http://127.0.0.1:7000")
	as := &events.Assignment{Server: "gs-1", Address: "127.0.0.1", Port: 7000, URL: url, Room: "m1", MatchID: "m1", JoinToken: "x"}
	if err := e.pub.Result(t.Context(), events.Result{TicketID: tk.TicketID, PlayerID: "traced", Status: events.StatusAssigned, MatchID: "m1", Assignment: as}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, data, err := c.ReadMessage(); err != nil || string(data) != url {
		t.Fatalf("message %q %v, want the URL", data, err)
	}

	var deliver sdktrace.ReadOnlySpan
	testkit.Eventually(t, 5*time.Second, func() bool {
		spans := tracingtest.Named(rec, tracing.SpanDeliver)
		if len(spans) > 0 {
			deliver = spans[0]
		}
		return deliver != nil
	}, "no deliver span")
	if deliver.Parent().SpanID().String() != "b7ad6b7169203331" {
		t.Errorf("deliver span's parent %v, want the allocation's span", deliver.Parent())
	}
	if l := deliver.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != create.SpanContext().SpanID() {
		t.Errorf("deliver span's links %+v, want the create span", l)
	}
}
