package matcher

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// Spans (pkg/tracing). A waiting ticket's stint in the pool is a "wait"
// span, child of the trace its message came with, from when it entered
// the pool to when it left it, matched or expired; a match's commit is a
// "commit" span, linked to the wait spans of its tickets (a match joins
// many traces: links, not a parent). The match, its players' "matched"
// results and so its allocation carry the commit span's traceparent, and
// a correlation id: the first of its tickets' that has one (every
// ticket's is logged), or a new one.
//
// With tracing off nothing here allocates but a ticket's pool.Trace, and
// that only for a ticket whose message carries a trace context or a
// correlation id.

// ticketTrace is what a ticket's spans need from its message's headers
// h, entered at now; nil when there is nothing to keep.
func ticketTrace(h nats.Header, now time.Time) *pool.Trace {
	m := events.MetaFromHeader(h)
	if m == (events.Meta{}) && !tracing.Enabled() {
		return nil
	}
	return &pool.Trace{Parent: m.TraceParent, CorrelationID: m.CorrelationID, Entered: now.UnixNano()}
}

// waited records e's stint in the pool, ended at now with outcome
// (matched, expired), as a "wait" span, and returns a link to it; ok
// false with tracing off. Its next stint, if it comes back to the pool
// (a commit that failed), starts at now. Only the runner's goroutine
// calls it, or one of its sweep's expiries (ender.expireAll), while it
// holds e.
func waited(ctx context.Context, e *pool.Entry, outcome string, now time.Time) (trace.Link, bool) {
	if !tracing.Enabled() || e.Trace == nil {
		return trace.Link{}, false
	}
	parent := events.WithMeta(ctx, events.Meta{CorrelationID: e.Trace.CorrelationID})
	parent = tracing.Remote(parent, e.Trace.Parent)
	_, span := tracing.Start(parent, tracing.SpanWait, trace.WithTimestamp(time.Unix(0, e.Trace.Entered)),
		trace.WithAttributes(attribute.String(tracing.AttrTicketID, e.TicketID), attribute.String(tracing.AttrOutcome, outcome)))
	span.End(trace.WithTimestamp(now))
	e.Trace.Entered = now.UnixNano()
	return trace.Link{SpanContext: span.SpanContext()}, true
}

// waitedAll records the wait spans of a match's tickets (waited) and
// returns the links to them.
func waitedAll(ctx context.Context, all []*pool.Entry, now time.Time) []trace.Link {
	if !tracing.Enabled() {
		return nil
	}
	var links []trace.Link
	for _, e := range all {
		if l, ok := waited(ctx, e, "matched", now); ok {
			links = append(links, l)
		}
	}
	return links
}

// matchMeta is the Meta a match's publishes carry before its commit
// span names itself in it: the first correlation id of its tickets, or a
// new one.
func matchMeta(all []*pool.Entry) events.Meta {
	for _, e := range all {
		if e.Trace != nil && e.Trace.CorrelationID != "" {
			return events.Meta{CorrelationID: e.Trace.CorrelationID}
		}
	}
	return events.Meta{CorrelationID: events.NewCorrelationID()}
}

// correlationIDs are the correlation ids of a match's tickets, for its
// log line ("" for a ticket with none), listed only if the line is
// written.
type correlationIDs []*pool.Entry

func (c correlationIDs) LogValue() slog.Value {
	ids := make([]string, len(c))
	for i, e := range c {
		if e.Trace != nil {
			ids[i] = e.Trace.CorrelationID
		}
	}
	return slog.AnyValue(ids)
}

// ticketIDs are a match's ticket ids, for its log line, listed only if
// the line is written: what traces a ticket to its match in the logs.
type ticketIDs []*pool.Entry

func (t ticketIDs) LogValue() slog.Value {
	ids := make([]string, len(t))
	for i, e := range t {
		ids[i] = e.TicketID
	}
	return slog.AnyValue(ids)
}

// startCommit starts the commit span of f, linked to its tickets' wait
// spans, in a ctx whose Meta carries f's correlation id and (tracing on)
// the span's traceparent.
func startCommit(ctx context.Context, f formed) (context.Context, trace.Span) {
	ctx = events.WithMeta(ctx, f.meta)
	if !tracing.Enabled() {
		// Before the options are built: they allocate.
		return ctx, trace.SpanFromContext(context.Background())
	}
	return tracing.Start(ctx, tracing.SpanCommit, trace.WithLinks(f.links...),
		trace.WithAttributes(attribute.String(tracing.AttrMatchID, f.match.MatchID), attribute.Int(tracing.AttrTickets, len(f.all))))
}

// endCommit ends a commit span with what became of its match: published
// (sent by this commit), or not (lost to other owners, undone, or kept to
// be retried: an error).
func endCommit(span trace.Span, o commitOutcome, published bool) {
	if !span.IsRecording() {
		return
	}
	switch {
	case published:
		span.SetAttributes(attribute.String(tracing.AttrOutcome, "published"))
	case o.unpublished != nil:
		span.SetStatus(codes.Error, "publish failed; retried as it is")
	case len(o.retry) > 0:
		span.SetStatus(codes.Error, "not decided; tickets retried")
	default:
		span.SetAttributes(attribute.String(tracing.AttrOutcome, "not published"))
	}
	span.End()
}
