package natsconn

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestUnanswered: what counts as NATS not answering (tried again), and
// what is an answer (never tried again for it).
func TestUnanswered(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("claim ticket x: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("read: %w", nats.ErrTimeout), true},
		{fmt.Errorf("publish: %w", jetstream.ErrNoStreamResponse), true},
		{fmt.Errorf("read: %w", nats.ErrConnectionReconnecting), true},
		{fmt.Errorf("publish: %w", jetstream.ErrTooManyStalledMsgs), true},
		{fmt.Errorf("claim: %w", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}), true},
		{fmt.Errorf("subscribe: %w", &nats.APIError{Code: 503, ErrorCode: 10008}), true},
		{jetstream.ErrKeyExists, false},
		{fmt.Errorf("claim: %w", &jetstream.APIError{Code: 400, ErrorCode: 10071, Description: "wrong last sequence"}), false},
		{fmt.Errorf("subscribe: %w", &nats.APIError{Code: 400, ErrorCode: 10100}), false},
		{fmt.Errorf("bind: %w", nats.ErrPermissionViolation), false},
		{errors.New("decode record: unexpected end of JSON input"), false},
	} {
		if got := Unanswered(c.err); got != c.want {
			t.Errorf("Unanswered(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
