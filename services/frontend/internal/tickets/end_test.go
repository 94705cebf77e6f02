package tickets

import (
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
)

// TestExpireAsksForASoonRetryOnlyWhenNATSDidNotAnswer: an expiry whose
// publish found no stream (as one cut off by a partition) asks the
// tracker to try again soon (results.RetrySoon), not a wait later; one
// that told the players, or met an outcome already decided, leaves
// nothing owed (results.RetryNone).
func TestExpireAsksForASoonRetryOnlyWhenNATSDidNotAnswer(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	expire := func(id string) bool { return e.s.Expire(t.Context(), id) == results.RetrySoon }
	ended := func(id string) bool { return e.s.Expire(t.Context(), id) == results.RetryNone }
	id := e.create(t, "pat")
	e.resultsTo(t, "nowhere.>")
	if !expire(id) {
		t.Fatalf("expiry whose publish no stream answered did not ask for a soon retry; logs:\n%s", e.logs.String())
	}
	e.resultsTo(t, e.subj.AllResults())
	if !ended(id) {
		t.Fatal("expiry that told the players left a retry owed")
	}
	if r := e.stored(t, "pat"); r == nil || r.Status != events.StatusExpired {
		t.Fatalf("stored %+v, want expired", r)
	}
	if !ended(id) {
		t.Fatal("expiry of a ticket already told left a retry owed")
	}
	other := e.create(t, "sam")
	if won, _, err := e.s.claims.Claim(t.Context(), other, events.OwnerCancelled); err != nil || !won {
		t.Fatalf("claim: %v %v", won, err)
	}
	if !ended(other) {
		t.Fatal("expiry that lost to a cancel left a retry owed")
	}
	// An error NATS answered (a record that does not decode) is tried
	// again a wait later, not soon, and leaves the retry owed.
	broken := e.create(t, "kim")
	if _, err := e.s.kv.Put(t.Context(), broken, []byte("{")); err != nil {
		t.Fatal(err)
	}
	if r := e.s.Expire(t.Context(), broken); r != results.RetryLater {
		t.Fatalf("expiry whose record does not decode left %v owed, want results.RetryLater", r)
	}
}
