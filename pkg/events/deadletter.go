package events

import (
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"
)

// deadLetterMsgSize is the dead-letter stream's message size limit.
const deadLetterMsgSize = 4 * MaxPayloadBytes

// MaxDeadLetterBytes bounds a dead letter's encoded record (NewDeadLetter
// keeps to it): the dead-letter stream's limit less room for the headers
// it is published with (a message id naming the subject, a correlation
// id, a traceparent), which the server counts too.
const MaxDeadLetterBytes = deadLetterMsgSize - 8<<10

// DeadLetter records a message that a service could not process and will
// not retry, with the reason. The original bytes are kept (Payload is
// base64 in JSON), up to MaxPayloadBytes of them; Text repeats them for
// people when they are valid UTF-8 and the record has room.
type DeadLetter struct {
	SchemaVersion int `json:"schema_version"`
	// Source is the service that gave up: "matcher", "allocator".
	Source string `json:"source"`
	// Subject and StreamSeq say where the message came from.
	Subject   string `json:"subject"`
	StreamSeq uint64 `json:"stream_seq,omitempty"`
	Reason    string `json:"reason"`
	// Fields lists the offending fields when the reason is a validation error.
	Fields []FieldError `json:"fields,omitempty"`
	// Headers are the message's correlation id and traceparent, under
	// HeaderCorrelationID and HeaderTraceParent, when well formed
	// (KeepMeta): a replay sends them again, so it is the same flow in
	// every log and trace. Read them with Meta.
	Headers map[string]string `json:"headers,omitempty"`
	// Payload is the rejected message, or its first MaxPayloadBytes when
	// it was larger, or less when the record would not fit the dead-letter
	// stream otherwise (see MaxDeadLetterBytes); then PayloadBytes is its
	// whole size.
	Payload      []byte    `json:"payload"`
	PayloadBytes int       `json:"payload_bytes,omitempty"`
	Text         string    `json:"text,omitempty"`
	At           time.Time `json:"at"`
}

// NewDeadLetter builds the record for a message rejected by source because
// of err. A *ValidationError's fields are copied out so they can be queried.
// The bytes are kept whole up to MaxPayloadBytes (see DeadLetter.Payload),
// and the whole record is cut to MaxDeadLetterBytes (see fit).
func NewDeadLetter(source, subject string, seq uint64, data []byte, err error, at time.Time) DeadLetter {
	d := DeadLetter{
		SchemaVersion: SchemaVersion,
		Source:        source,
		Subject:       subject,
		StreamSeq:     seq,
		Reason:        err.Error(),
		Payload:       data,
		At:            at.UTC(),
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		d.Fields = ve.Fields
	}
	if len(data) > MaxPayloadBytes {
		d.Payload, d.PayloadBytes = data[:MaxPayloadBytes], len(data)
	} else if utf8.Valid(data) {
		d.Text = string(data) // not of a cut payload: the cut may split a character
	}
	d.fit()
	return d
}

// What fit keeps of the texts of a record too large for the stream: the
// first deadLetterTextBytes of Reason and of each field error's field and
// reason, of the first deadLetterFields field errors. JSON may write 6
// bytes for each of their bytes (\u003c), so cut they take at most about
// 6 * (1 + 2*16) KiB: with a whole Payload (87 KiB in base64) well within
// MaxDeadLetterBytes.
const (
	deadLetterTextBytes = 1 << 10
	deadLetterFields    = 16
)

// fit cuts d until its encoding is at most MaxDeadLetterBytes, so that the
// stream takes it (a dead letter refused is a ticket retried for ever).
// A record is cut only when it must be, least needed first: Text (a copy
// of Payload for people), then the reason and field errors (a field name
// may be as long as the payload) and Headers to their well-formed meta,
// then Payload (PayloadBytes keeps its whole size).
func (d *DeadLetter) fit() {
	if d.size() <= MaxDeadLetterBytes {
		return
	}
	d.Text = ""
	if d.size() <= MaxDeadLetterBytes {
		return
	}
	d.Reason = CutText(d.Reason, deadLetterTextBytes)
	// A copy: the fields are the error's too.
	fields := make([]FieldError, 0, min(len(d.Fields), deadLetterFields))
	for _, f := range d.Fields[:min(len(d.Fields), deadLetterFields)] {
		fields = append(fields, FieldError{Field: CutText(f.Field, deadLetterTextBytes), Reason: CutText(f.Reason, deadLetterTextBytes)})
	}
	if len(fields) == 0 {
		fields = nil
	}
	d.Fields = fields
	// Only the well-formed meta: a few hundred bytes at most, worth
	// more to whoever follows the ticket than as many bytes of payload.
	d.Headers = d.Meta().headers()
	for n := d.size(); n > MaxDeadLetterBytes && len(d.Payload) > 0; n = d.size() {
		if d.PayloadBytes == 0 {
			d.PayloadBytes = len(d.Payload)
		}
		// Base64 writes 4 bytes for 3: cut what is over, and a little more.
		over := (n-MaxDeadLetterBytes)*3/4 + 3
		d.Payload = d.Payload[:max(len(d.Payload)-over, 0)]
	}
}

// KeepMeta records in d.Headers the correlation id and traceparent of m
// that are well formed (Meta.Bounded), and nothing else of a message's
// headers: they come from players and publishers. The record is cut
// again to fit (fit), should they not.
func (d *DeadLetter) KeepMeta(m Meta) {
	d.Headers = m.Bounded().headers()
	d.fit()
}

// Meta is the correlation id and traceparent d.Headers keep, Bounded: a
// record read back is outside input like any message.
func (d DeadLetter) Meta() Meta {
	return Meta{CorrelationID: d.Headers[HeaderCorrelationID], TraceParent: d.Headers[HeaderTraceParent]}.Bounded()
}

// headers are m's non-empty fields by the names they travel under; nil
// for none.
func (m Meta) headers() map[string]string {
	var h map[string]string
	for k, v := range map[string]string{HeaderCorrelationID: m.CorrelationID, HeaderTraceParent: m.TraceParent} {
		if v != "" {
			if h == nil {
				h = map[string]string{}
			}
			h[k] = v
		}
	}
	return h
}

// size is the length of d's encoding.
func (d *DeadLetter) size() int {
	b, _ := json.Marshal(d) // a DeadLetter always encodes
	return len(b)
}

// CutText returns s, or its first n bytes (whole characters) and "…":
// a text of unbounded length (an error's, a peer's) kept or sent on.
func CutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
