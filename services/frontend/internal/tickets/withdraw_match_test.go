package tickets

import (
	"context"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// matchFirstCreates is the claims bucket when a matcher's claim of the
// ticket lands and the withdrawal's own claim is then refused (the
// bucket without a leader): the withdrawal learns nothing from its claim.
type matchFirstCreates struct{ jetstream.KeyValue }

func (f matchFirstCreates) Create(ctx context.Context, key string, _ []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	_, _ = f.KeyValue.Create(ctx, key, []byte(events.MatchOwner("m-1")))
	return 0, &jetstream.APIError{Code: http.StatusServiceUnavailable, Description: "no leader"}
}

// matchedCreates is the claims bucket when a matcher's claim of the
// ticket lands first, so the withdrawal's claim loses to it.
type matchedCreates struct{ jetstream.KeyValue }

func (f matchedCreates) Create(ctx context.Context, key string, v []byte, o ...jetstream.KVCreateOpt) (uint64, error) {
	_, _ = f.KeyValue.Create(ctx, key, []byte(events.MatchOwner("m-1")))
	return f.KeyValue.Create(ctx, key, v, o...)
}

// claimsWrapped gives the claims bucket wrap's behaviour.
type claimsWrapped struct {
	jetstream.JetStream
	wrap func(jetstream.KeyValue) jetstream.KeyValue
}

func (c claimsWrapped) WrapKeyValue(kv jetstream.KeyValue) jetstream.KeyValue { return c.wrap(kv) }

// cutResults is RESULTS not answering reads.
type cutResults struct{ jetstream.Stream }

func (cutResults) GetLastMsgForSubject(context.Context, string) (*jetstream.RawStreamMsg, error) {
	return nil, context.DeadlineExceeded
}

// A creation whose writes failed and whose withdrawal fails while a
// matcher has put the ticket in a match answers it as created: the
// withdrawal's claim refused (the claims bucket without a leader), or
// lost to the match's with RESULTS cut off so its status is not read.
// Both answered an error before, for a ticket a game waits for: a
// no-show (review R3, a hostile reader's).
func TestAWithdrawalThatFailsOnAMatchedTicketAnswersIt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		claims  func(jetstream.KeyValue) jetstream.KeyValue
		results bool // RESULTS cut off
	}{
		{"claim refused", func(kv jetstream.KeyValue) jetstream.KeyValue { return matchFirstCreates{kv} }, false},
		{"status unread", func(kv jetstream.KeyValue) jetstream.KeyValue { return matchedCreates{kv} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newToldEnv(t)
			e.s.js = lostAcks{e.s.js} // queued, its ack lost
			claims, err := events.NewClaims(t.Context(), claimsWrapped{e.js, tc.claims}, e.subj)
			if err != nil {
				t.Fatal(err)
			}
			e.s.claims = claims
			if tc.results {
				e.s.results = cutResults{e.s.results}
			}
			cerr := e.createPat(t)
			id := e.queuedTicket(t)
			if owner, _ := e.s.claims.Owner(t.Context(), id); owner != events.MatchOwner("m-1") {
				t.Fatalf("ticket %s claimed %q; the test wants it in a match", id, owner)
			}
			if cerr != nil {
				t.Fatalf("a creation whose ticket is in a match answered %v: a no-show", cerr)
			}
			e.s.withdrawals.mu.Lock()
			waiting := len(e.s.withdrawals.waiting)
			e.s.withdrawals.mu.Unlock()
			if waiting != 0 {
				t.Fatalf("%d withdrawals of a matched ticket left to try again", waiting)
			}
		})
	}
}
