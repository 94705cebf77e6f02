package results

import (
	"encoding/hex"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// traceID is a W3C trace id; the zero value is none (the format forbids
// an all-zero id). Kept as 16 bytes per tracked ticket, not its 32-hex
// string: it is read only when the ticket is assigned.
type traceID [16]byte

// traceOf is the trace id of m's traceparent, zero for none or one
// that does not parse (events.ParseTraceParent: a header a client sent
// is data, never trusted to fit).
func traceOf(m events.Meta) traceID {
	id, ok := m.TraceID()
	if !ok {
		return traceID{}
	}
	return id
}

// observe records v in h, with the trace id as its exemplar when there
// is one (Prometheus shows exemplars in the OpenMetrics format only).
func (id traceID) observe(h prometheus.Histogram, v float64) {
	eo, ok := h.(prometheus.ExemplarObserver)
	if id == (traceID{}) || !ok {
		h.Observe(v)
		return
	}
	eo.ObserveWithExemplar(v, prometheus.Labels{"trace_id": hex.EncodeToString(id[:])})
}
