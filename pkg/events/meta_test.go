package events_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// A ticket's headers come from players (the frontend copies a request's
// Traceparent and X-Correlation-Id) and from anyone allowed to publish a
// ticket: what every service keeps of them is bounded, so that a header
// of a megabyte neither waits in a pool beside the ticket nor rides on
// the match of the player's partners.
func TestMetaKeepsOnlyWellFormedContext(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	cases := []struct {
		name    string
		cid, tp string
		want    events.Meta
	}{
		{"well formed", "corr-1", tp, events.Meta{CorrelationID: "corr-1", TraceParent: tp}},
		{"huge traceparent", "c", strings.Repeat("0", 1<<20), events.Meta{CorrelationID: "c"}},
		{"not a traceparent", "c", "hello", events.Meta{CorrelationID: "c"}},
		{"upper-case hex", "c", strings.ToUpper(tp), events.Meta{CorrelationID: "c"}},
		{"zero trace id", "c", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", events.Meta{CorrelationID: "c"}},
		{"version ff", "c", "ff" + tp[2:], events.Meta{CorrelationID: "c"}},
		{"reserved flags in version 00", "c", tp[:53] + "ff", events.Meta{CorrelationID: "c"}},
		{"a later version's flags", "c", "01" + tp[2:53] + "ff", events.Meta{CorrelationID: "c", TraceParent: "01" + tp[2:53] + "ff"}},
		{"a later version's extra fields", "c", "01" + tp[2:] + "-what-comes", events.Meta{CorrelationID: "c", TraceParent: "01" + tp[2:]}},
		{"huge correlation id", strings.Repeat("x", events.MaxCorrelationIDBytes+1), tp, events.Meta{TraceParent: tp}},
		{"control characters", "a\r\nb", tp, events.Meta{TraceParent: tp}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := nats.Header{}
			h.Set(events.HeaderCorrelationID, c.cid)
			h.Set(events.HeaderTraceParent, c.tp)
			if got := events.MetaFromHeader(h); got != c.want {
				t.Errorf("MetaFromHeader = %+v, want %+v", got, c.want)
			}
			if got := (events.Meta{CorrelationID: c.cid, TraceParent: c.tp}).Bounded(); got != c.want {
				t.Errorf("Bounded = %+v, want %+v", got, c.want)
			}
		})
	}
}

// TraceID is the trace id of the traceparent Bounded keeps, and none
// for what it drops.
func TestMetaTraceID(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	id, ok := events.Meta{TraceParent: tp}.TraceID()
	if !ok || hex.EncodeToString(id[:]) != tp[3:35] {
		t.Fatalf("TraceID = %x %v, want %s", id, ok, tp[3:35])
	}
	for _, bad := range []string{"", strings.ToUpper(tp), tp + "-x", tp[:53] + "ff"} {
		if id, ok := (events.Meta{TraceParent: bad}).TraceID(); ok || id != [16]byte{} {
			t.Errorf("TraceID of %q = %x %v, want none", bad, id, ok)
		}
	}
	p, ok := events.ParseTraceParent(tp)
	if !ok || p.String() != tp {
		t.Errorf("ParseTraceParent(%s).String() = %s %v", tp, p, ok)
	}
}
