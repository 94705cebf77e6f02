package events

import (
	"errors"
	"time"
	"unicode/utf8"
)

// DeadLetter records a message that a service could not process and will
// not retry, with the reason. The original bytes are kept whole (Payload is
// base64 in JSON) so nothing is lost; Text repeats them for people when they
// are valid UTF-8.
type DeadLetter struct {
	SchemaVersion int `json:"schema_version"`
	// Source is the service that gave up: "matcher", "allocator".
	Source string `json:"source"`
	// Subject and StreamSeq say where the message came from.
	Subject   string `json:"subject"`
	StreamSeq uint64 `json:"stream_seq,omitempty"`
	Reason    string `json:"reason"`
	// Fields lists the offending fields when the reason is a validation error.
	Fields  []FieldError      `json:"fields,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Payload []byte            `json:"payload"`
	Text    string            `json:"text,omitempty"`
	At      time.Time         `json:"at"`
}

// NewDeadLetter builds the record for a message rejected by source because
// of err. A *ValidationError's fields are copied out so they can be queried.
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
	if utf8.Valid(data) {
		d.Text = string(data)
	}
	return d
}
