package events

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestLeaderGetErrorsReadAsJetStreams: a leader read's API error (the
// older nats.go API's) reads as the jetstream package's, as every other
// KeyValue call's does: a 503 with no leader was taken by the frontend's
// expiry for a lasting error, tried again a wait later, not in seconds.
func TestLeaderGetErrorsReadAsJetStreams(t *testing.T) {
	t.Parallel()
	noLeader := fmt.Errorf("get: %w", &nats.APIError{Code: http.StatusServiceUnavailable, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"})
	var api *jetstream.APIError
	if err := asJetStreamError(noLeader); !errors.As(err, &api) || api.Code != http.StatusServiceUnavailable || api.ErrorCode != 10008 {
		t.Fatalf("no leader reads as %#v", err)
	}
	other := errors.New("not an API error")
	if err := asJetStreamError(other); err != other {
		t.Fatalf("a plain error became %v", err)
	}
}
