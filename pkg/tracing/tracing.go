package tracing

import (
	"context"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// scope names the instrumentation: one tracer for all our services, whose
// spans service.name tells apart.
const scope = "github.com/quickmatch-dev/quickmatch"

// The span names of the path of a ticket: a contract, since README
// "Tracing" lists them and trace backends are queried by them.
const (
	SpanCreate   = "create"   // frontend: a ticket's creation
	SpanWait     = "wait"     // matcher: a ticket's stint in the pool
	SpanCommit   = "commit"   // matcher: a match's commit
	SpanAllocate = "allocate" // allocator: a match finds its game server
	SpanDeliver  = "deliver"  // frontend: an outcome written to its player
	SpanJoin     = "join"     // game: a player seated in the match's room
)

// The span attribute keys, as README "Tracing" lists them. One value
// has one key in every service: a room is named by its match id, so the
// join carries AttrMatchID too.
const (
	// AttrCorrelationID carries the correlation id of events.Meta, so a
	// trace and the log lines of a flow can be joined.
	AttrCorrelationID = "quickmatch.correlation_id"
	AttrTicketID      = "quickmatch.ticket_id"
	AttrMatchID       = "quickmatch.match_id"
	AttrStatus        = "quickmatch.status"  // the outcome a deliver wrote
	AttrOutcome       = "quickmatch.outcome" // what became of a wait or a commit
	AttrTickets       = "quickmatch.tickets" // how many tickets a match has
)

// tracer is nil while tracing is off: Start then does nothing at all.
var tracer atomic.Pointer[tracerBox]

type tracerBox struct{ t trace.Tracer }

// noop is the span Start returns while tracing is off (no allocation).
var noop = trace.SpanFromContext(context.Background())

// Install makes tp the provider Start uses (nil turns tracing off). Setup
// calls it; tests call it with a provider of their own.
func Install(tp trace.TracerProvider) {
	if tp == nil {
		tracer.Store(nil)
		return
	}
	tracer.Store(&tracerBox{t: tp.Tracer(scope)})
}

// Enabled reports whether spans are being made.
func Enabled() bool { return tracer.Load() != nil }

// Start starts a span, child of the trace context ctx carries (an
// OpenTelemetry span in ctx, else events.MetaFrom(ctx).TraceParent as a
// remote parent), and returns a ctx carrying the new span AND an
// events.Meta whose TraceParent names the new span (CorrelationID kept),
// so every events.NewMsg publish made with that ctx carries it.
//
// While tracing is off it returns ctx unchanged and a no-op span: the
// Meta's TraceParent (a client's, say) travels on as it came.
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	box := tracer.Load()
	if box == nil {
		return ctx, noop
	}
	m := events.MetaFrom(ctx)
	if !trace.SpanContextFromContext(ctx).IsValid() {
		if sc, ok := parse(m.TraceParent); ok {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	}
	if m.CorrelationID != "" {
		// A full slice expression: never write into the caller's array.
		opts = append(opts[:len(opts):len(opts)], trace.WithAttributes(attribute.String(AttrCorrelationID, m.CorrelationID)))
	}
	ctx, span := box.t.Start(ctx, name, opts...)
	if tp := Format(span.SpanContext()); tp != "" {
		m.TraceParent = tp
		ctx = events.WithMeta(ctx, m)
	}
	return ctx, span
}

// Link is a link to the span a traceparent names; ok false when it does
// not parse.
func Link(traceparent string) (trace.Link, bool) {
	sc, ok := parse(traceparent)
	if !ok {
		return trace.Link{}, false
	}
	return trace.Link{SpanContext: sc}, true
}

// Remote returns ctx with the span a traceparent names as its remote
// parent (ctx unchanged when it does not parse). The ctx's events.Meta
// names it too (CorrelationID kept), so a publish made with the returned
// ctx carries it even while tracing is off.
func Remote(ctx context.Context, traceparent string) context.Context {
	sc, ok := parse(traceparent)
	if !ok {
		return ctx
	}
	m := events.MetaFrom(ctx)
	m.TraceParent = Format(sc) // bounded: a later version's tail is not kept
	return trace.ContextWithRemoteSpanContext(events.WithMeta(ctx, m), sc)
}

// Format is the W3C traceparent of sc ("" when sc is not valid).
func Format(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	return events.TraceParent{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags())}.String()
}

// parse reads a traceparent with the one parser, pkg/events' (the
// bounds Meta.Bounded keeps), marked remote.
func parse(traceparent string) (trace.SpanContext, bool) {
	p, ok := events.ParseTraceParent(traceparent)
	if !ok {
		return trace.SpanContext{}, false
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: p.TraceID, SpanID: p.SpanID, Remote: true,
		// Only the flags the specification defines travel on, as the
		// OpenTelemetry propagator keeps them.
		TraceFlags: trace.TraceFlags(p.Flags) & (trace.FlagsSampled | trace.FlagsRandom),
	})
	return sc, sc.IsValid()
}

// End ends span, marked failed with err when err is not nil: the one way
// our spans record an error.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
