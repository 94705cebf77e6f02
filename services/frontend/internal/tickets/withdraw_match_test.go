package tickets

import (
	"context"
	"net/http"
	"sync/atomic"
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

// A withdrawal whose claim is refused at once (the claims bucket without
// a leader, for a moment) is tried again within its bound, not left at
// the first refusal to the background's try a second later: the
// matchers, waiting for the same bucket, claimed the ticket for a match
// first as it came back, and its creation had answered an error (chaos
// S56: 13 no-shows, each matched 0.5-1.1 s after its withdrawal was
// refused). Coming back, the withdrawal either wins (the creation answers
// its error, nothing left to try) or finds the match (answered as created).
func TestAWithdrawalRefusedAtOnceIsTriedAgainWithinItsBound(t *testing.T) {
	t.Parallel()
	for _, matchFirst := range []bool{false, true} {
		t.Run(map[bool]string{false: "withdrawn", true: "matched first"}[matchFirst], func(t *testing.T) {
			t.Parallel()
			e := newToldEnv(t)
			e.s.js = lostAcks{e.s.js} // queued, its ack lost
			var fails atomic.Int32
			fails.Store(3)
			claims, err := events.NewClaims(t.Context(), failingClaims{JetStream: e.js, fails: &fails, matchFirst: matchFirst}, e.subj)
			if err != nil {
				t.Fatal(err)
			}
			e.s.claims = claims
			cerr := e.createPat(t)
			id := e.queuedTicket(t)
			owner, _ := e.s.claims.Owner(t.Context(), id)
			e.s.withdrawals.mu.Lock()
			waiting := len(e.s.withdrawals.waiting)
			e.s.withdrawals.mu.Unlock()
			if waiting != 0 {
				t.Fatalf("withdrawal left to the background (%d waiting), ticket %s claimed %q", waiting, id, owner)
			}
			switch {
			case matchFirst && cerr != nil:
				t.Fatalf("a creation whose ticket is in a match (%q) answered %v: a no-show", owner, cerr)
			case !matchFirst && (cerr == nil || owner != events.OwnerCancelled):
				t.Fatalf("creation answered %v, ticket claimed %q; want an error and the ticket withdrawn", cerr, owner)
			}
		})
	}
}
