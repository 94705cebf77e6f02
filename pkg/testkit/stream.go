package testkit

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// Last is the newest message stored on subject in stream, decoded, or
// nil if there is none (a result a test waits for, say).
func Last[T any](tb testing.TB, js jetstream.JetStream, stream, subject string, decode func([]byte) (T, error)) *T {
	tb.Helper()
	st, err := js.Stream(tb.Context(), stream)
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(tb.Context(), subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	v, err := decode(raw.Data)
	if err != nil {
		tb.Fatalf("decode the newest message on %s: %v", subject, err)
	}
	return &v
}
