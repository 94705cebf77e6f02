package events

import "encoding/hex"

// MaxCorrelationIDBytes bounds a correlation id a caller may choose
// (the frontend replaces a longer X-Correlation-Id with its own).
const MaxCorrelationIDBytes = 128

// Bounded is m with what is not well formed dropped: a correlation id
// longer than MaxCorrelationIDBytes or with other than visible ASCII, a
// traceparent that is not W3C trace context (ParseTraceParent). Headers
// come from players and from anyone allowed to publish a ticket, and
// every service keeps and passes on what it reads: a ticket waits in a
// pool with them and a match carries its first ticket's correlation id
// to the allocator, so a header of a megabyte must stop at the first
// reader.
func (m Meta) Bounded() Meta {
	if len(m.CorrelationID) > MaxCorrelationIDBytes || !visibleASCII(m.CorrelationID) {
		m.CorrelationID = ""
	}
	if _, ok := ParseTraceParent(m.TraceParent); ok {
		m.TraceParent = m.TraceParent[:traceParentLen] // a later version's fields cut
	} else {
		m.TraceParent = ""
	}
	return m
}

// TraceID is the trace id of m's traceparent; ok false when it has none
// that parses (ParseTraceParent).
func (m Meta) TraceID() (id [16]byte, ok bool) {
	tp, ok := ParseTraceParent(m.TraceParent)
	return tp.TraceID, ok
}

func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// TraceParent is a W3C traceparent's fields: the one parser
// (ParseTraceParent) and formatter (String) of the repository, which
// pkg/tracing builds its span contexts on.
type TraceParent struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
}

// traceParentLen is the length of a version-00 traceparent:
// 2+1+32+1+16+1+2.
const traceParentLen = 55

// ParseTraceParent reads a W3C traceparent as the OpenTelemetry
// propagator does (its fuzz test holds the two to it): version-traceid-
// parentid-flags in lower-case hex, ids not all zero, version ff refused;
// version 00 with neither more fields nor flags beyond sampled and
// random; a later version's extra fields are ignored.
func ParseTraceParent(tp string) (TraceParent, bool) {
	var p TraceParent
	const n = traceParentLen
	if len(tp) < n || (len(tp) > n && (tp[:2] == "00" || tp[n] != '-')) {
		return p, false
	}
	tp = tp[:n]
	if tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || tp[:2] == "ff" {
		return p, false
	}
	for _, f := range []string{tp[:2], tp[3:35], tp[36:52], tp[53:]} {
		if !lowerHex(f) {
			return p, false
		}
	}
	_, _ = hex.Decode(p.TraceID[:], []byte(tp[3:35])) // lowerHex checked it
	_, _ = hex.Decode(p.SpanID[:], []byte(tp[36:52]))
	var b [1]byte
	_, _ = hex.Decode(b[:], []byte(tp[53:]))
	p.Flags = b[0]
	if p.TraceID == [16]byte{} || p.SpanID == [8]byte{} || (tp[:2] == "00" && p.Flags > 3) {
		return TraceParent{}, false
	}
	return p, true
}

// String is p as a version-00 traceparent.
func (p TraceParent) String() string {
	var b [traceParentLen]byte
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], p.TraceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], p.SpanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{p.Flags})
	return string(b[:])
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}
