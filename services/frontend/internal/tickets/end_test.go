package tickets

import (
	"testing"

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
