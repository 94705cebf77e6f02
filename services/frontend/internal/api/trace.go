package api

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

// The API's spans (pkg/tracing; no-ops while tracing is off): the create
// span of POST /v1/tickets and of both WebSockets, and the deliver span
// of an outcome written over SSE or a WebSocket.

// startCreate starts the "create" span of a ticket's creation (POST or
// WebSocket), child of the client's traceparent when it sent one
// (requestMeta): the ticket is published with this span as its parent.
func startCreate(ctx context.Context) (context.Context, trace.Span) {
	return tracing.Start(ctx, tracing.SpanCreate, trace.WithSpanKind(trace.SpanKindServer))
}

// endCreate ends span, naming the ticket it created or the error.
func endCreate(span trace.Span, v tickets.View, err error) {
	if err == nil && span.IsRecording() {
		span.SetAttributes(attribute.String(tracing.AttrTicketID, v.TicketID))
	}
	tracing.End(span, err)
}

// deliver starts the "deliver" span of an outcome (a terminal status)
// written to its player; for another status it is a no-op. An assigned
// ticket's is a child of the allocation that assigned it (the
// traceparent its play URL carries, play.ParamTrace), linked to ctx's
// span (its create span, on a WebSocket); any other is a child of ctx's.
// On a WebSocket it ends once the frame is written; over SSE once the
// event is in the response, which the handler's return sends
// (sseWriter.write).
func deliver(ctx context.Context, v tickets.View) trace.Span {
	if !v.Status.Terminal() || !tracing.Enabled() {
		return trace.SpanFromContext(context.Background()) // a no-op
	}
	opts := []trace.SpanStartOption{trace.WithAttributes(
		attribute.String(tracing.AttrTicketID, v.TicketID), attribute.String(tracing.AttrStatus, string(v.Status)))}
	if v.Assignment != nil {
		if _, j, err := play.ParseURL(v.Assignment.URL); err == nil && j.Trace != "" {
			if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
			}
			ctx = tracing.Remote(ctx, j.Trace)
		}
	}
	_, span := tracing.Start(ctx, tracing.SpanDeliver, opts...)
	return span
}
