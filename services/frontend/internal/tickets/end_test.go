package tickets

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestExpireAsksForASoonRetryOnlyWhenNATSDidNotAnswer: an expiry whose
// publish found no stream (as one cut off by a partition) asks the
// tracker to try again soon (it returns retrySoon), not a wait later; one
// that told the players, or met an outcome already decided, does not.
func TestExpireAsksForASoonRetryOnlyWhenNATSDidNotAnswer(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	expire := func(id string) bool { return e.s.Expire(t.Context(), id) }
	id := e.create(t, "pat")
	e.resultsTo(t, "nowhere.>")
	if !expire(id) {
		t.Fatalf("expiry whose publish no stream answered did not ask for a soon retry; logs:\n%s", e.logs.String())
	}
	e.resultsTo(t, e.subj.AllResults())
	if expire(id) {
		t.Fatal("expiry that told the players asked for a soon retry")
	}
	if r := e.stored(t, "pat"); r == nil || r.Status != events.StatusExpired {
		t.Fatalf("stored %+v, want expired", r)
	}
	if expire(id) {
		t.Fatal("expiry of a ticket already told asked for a soon retry")
	}
	other := e.create(t, "sam")
	if won, _, err := e.s.claims.Claim(t.Context(), other, events.OwnerCancelled); err != nil || !won {
		t.Fatalf("claim: %v %v", won, err)
	}
	if expire(other) {
		t.Fatal("expiry that lost to a cancel asked for a soon retry")
	}
}

// TestUnanswered sorts the errors of an expiry: those that say NATS did
// not answer are worth a try soon, the others not.
func TestUnanswered(t *testing.T) {
	t.Parallel()
	unavailable := &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}
	tests := []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("claim ticket x: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("claim of ticket x: %w", unavailable), true},
		{fmt.Errorf("read: %w", nats.ErrTimeout), true},
		{fmt.Errorf("publish: %w", jetstream.ErrNoStreamResponse), true},
		{fmt.Errorf("read: %w", nats.ErrConnectionReconnecting), true},
		{fmt.Errorf("%w: expired", ErrAlreadyDecided), false},
		{fmt.Errorf("claim: %w", &jetstream.APIError{Code: 400, ErrorCode: 10071, Description: "wrong last sequence"}), false},
		{errors.New("decode record: unexpected end of JSON input"), false},
	}
	for _, tt := range tests {
		if got := unanswered(tt.err); got != tt.want {
			t.Errorf("unanswered(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
