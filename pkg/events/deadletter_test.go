package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestDeadLetterFitsItsStreamWhateverItCarries: JSON writes 6 bytes for
// each '<', '>', '&' and control character (\u003c), so a payload within
// MaxPayloadBytes, an error naming a field as long, and its fields could
// make a record larger than the dead-letter stream takes; refused, the
// ticket would be retried for ever. Every record must fit, and keep what
// it can.
func TestDeadLetterFitsItsStreamWhateverItCarries(t *testing.T) {
	t.Parallel()
	var limit int32
	for _, s := range (Topology{}).Streams() {
		if s.Name == (Subjects{}).DeadLetterStream() {
			limit = s.MaxMsgSize
		}
	}
	if limit <= MaxDeadLetterBytes {
		t.Fatalf("dead-letter stream takes %d bytes, records are bounded at %d: no room for headers", limit, MaxDeadLetterBytes)
	}
	worst := strings.Repeat("<", MaxPayloadBytes)
	many := &ValidationError{Kind: "ticket"}
	for range 200 {
		many.Fields = append(many.Fields, FieldError{Field: worst[:1000], Reason: strings.Repeat("\x01", 1000)})
	}
	for name, c := range map[string]struct {
		data []byte
		err  error
	}{
		"escaped text":          {[]byte(worst), errors.New("not a JSON object")},
		"control characters":    {[]byte(strings.Repeat("\x01", MaxPayloadBytes)), errors.New("not a JSON object")},
		"escaped field too":     {[]byte(worst), &ValidationError{Kind: "ticket", Fields: []FieldError{{Field: worst, Reason: "unknown field"}}}},
		"escaped reason":        {[]byte(worst), errors.New(worst + worst)},
		"many fields":           {[]byte(worst), many},
		"oversized and escaped": {[]byte(strings.Repeat("&", 1<<20)), errors.New(worst)},
	} {
		d := NewDeadLetter("matcher", "matchmaking.eu.gold", 7, c.data, c.err, time.Now())
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) > MaxDeadLetterBytes {
			t.Errorf("%s: dead letter of %d bytes, at most %d fit", name, len(out), MaxDeadLetterBytes)
		}
		if d.Reason == "" || len(d.Payload) == 0 || (d.PayloadBytes == 0) != (len(d.Payload) == len(c.data)) {
			t.Errorf("%s: kept reason %d bytes, payload %d of %d (payload_bytes %d)", name, len(d.Reason), len(d.Payload), len(c.data), d.PayloadBytes)
		}
	}
	// A plain ticket keeps everything.
	raw := []byte(`{"player_id":"a<b","skill":-1}`)
	_, verr := DecodeTicket(raw)
	d := NewDeadLetter("matcher", "matchmaking.eu.gold", 7, raw, verr, time.Now())
	if d.Text != string(raw) || string(d.Payload) != string(raw) || d.Reason != verr.Error() || len(d.Fields) == 0 {
		t.Fatalf("small dead letter lost data: %+v", d)
	}
}

// TestDeadLetterKeepsItsFlow: a dead letter keeps the correlation id and
// trace context of the message it records, so that a replay of it is
// the same flow in every log and trace; only well-formed ones
// (Meta.Bounded), whatever the message or a record read back carried,
// and they survive the cuts that make a record fit its stream.
func TestDeadLetterKeepsItsFlow(t *testing.T) {
	t.Parallel()
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	good := Meta{CorrelationID: "c-123", TraceParent: tp}
	for name, c := range map[string]struct {
		data []byte
		err  error
		meta Meta
		want Meta
	}{
		"well formed":               {[]byte(`{"player_id":"a"}`), errors.New("unknown mode"), good, good},
		"a later version's":         {[]byte(`{"player_id":"a"}`), errors.New("unknown mode"), Meta{TraceParent: "01" + tp[2:] + "-more"}, Meta{TraceParent: "01" + tp[2:]}},
		"a correlation id too long": {[]byte(`{}`), errors.New("x"), Meta{CorrelationID: strings.Repeat("c", MaxCorrelationIDBytes+1), TraceParent: tp}, Meta{TraceParent: tp}},
		"not visible ASCII":         {[]byte(`{}`), errors.New("x"), Meta{CorrelationID: "a\nb", TraceParent: "00-zz"}, Meta{}},
		"cut to fit":                {[]byte(strings.Repeat("<", 1<<20)), errors.New(strings.Repeat("<", MaxPayloadBytes)), good, good},
	} {
		d := NewDeadLetter("matcher", "matchmaking.eu.gold", 7, c.data, c.err, time.Now())
		d.KeepMeta(c.meta)
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) > MaxDeadLetterBytes {
			t.Errorf("%s: dead letter of %d bytes, at most %d fit", name, len(out), MaxDeadLetterBytes)
		}
		var back DeadLetter
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if got := back.Meta(); got != c.want {
			t.Errorf("%s: read back %+v, want %+v", name, got, c.want)
		}
		if len(back.Headers) != btoi(c.want.CorrelationID != "")+btoi(c.want.TraceParent != "") {
			t.Errorf("%s: headers %q, want only the well-formed meta", name, back.Headers)
		}
	}
	// A record read back is outside input: its headers are bounded too.
	hostile := DeadLetter{Headers: map[string]string{HeaderCorrelationID: strings.Repeat("x", 1<<20), HeaderTraceParent: tp, "other": "y"}}
	if got := hostile.Meta(); got != (Meta{TraceParent: tp}) {
		t.Errorf("hostile headers read as %+v", got)
	}
	hostile.Payload = []byte(strings.Repeat("<", MaxPayloadBytes))
	hostile.fit()
	if _, ok := hostile.Headers["other"]; ok || hostile.size() > MaxDeadLetterBytes || hostile.Meta().TraceParent != tp {
		t.Errorf("fit kept headers %d bytes of other, %d bytes in all; meta %+v", len(hostile.Headers["other"]), hostile.size(), hostile.Meta())
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
