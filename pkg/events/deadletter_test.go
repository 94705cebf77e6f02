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
