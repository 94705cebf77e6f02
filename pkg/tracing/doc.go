// Package tracing gives every service the same OpenTelemetry traces and
// carries their context across NATS on what pkg/events already sends: the
// W3C traceparent of [events.Meta], set on every message by
// [events.NewMsg] and read back by [events.MetaFromHeader]. There is one
// mechanism, not two: a span started here is written into the ctx's Meta,
// so any publish made with that ctx names it as the parent of what the
// receiver does next.
//
// Tracing is off by default. [Setup] exports over OTLP/HTTP only when the
// SDK's standard OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; the other OTEL_* variables
// of the SDK (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
// OTEL_TRACES_SAMPLER, OTEL_BSP_SCHEDULE_DELAY, OTEL_EXPORTER_OTLP_HEADERS,
// ...) apply as the SDK documents them. While off, [Start] allocates
// nothing and leaves the ctx as it is, so a client's traceparent still
// travels unchanged with its ticket and the trace resumes at the next
// service that has tracing on.
//
// The spans of the path of a ticket, by service (service.name):
//
//	frontend   create (POST /v1/tickets, WebSocket create), deliver (an outcome written to SSE/WS)
//	matcher    wait (a ticket in the pool), commit (a match, linked to its tickets' spans)
//	allocator  allocate (a match finds its game server; the join carries it on)
//	game       join (a player seated in the match's room)
package tracing
