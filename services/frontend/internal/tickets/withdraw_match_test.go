package tickets

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

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

// A withdrawal whose claim is refused for now (the claims bucket without
// a leader, for a moment) is tried again within its bound, not left at
// the first refusal to the background's try a second later: the
// matchers, waiting for the same bucket, claimed the ticket for a match
// first as it came back, and its creation had answered an error (chaos
// S56: 13 no-shows, each matched 0.5-1.1 s after its withdrawal was
// refused). Coming back, the withdrawal either wins (the creation answers
// its error, nothing left to try) or finds the match (answered as created).
func TestAWithdrawalRefusedForNowIsTriedAgainWithinItsBound(t *testing.T) {
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
			if waiting := testutil.ToFloat64(e.s.withdrawals.gauge); waiting != 0 {
				t.Fatalf("withdrawal left to the background (%v waiting), ticket %s claimed %q", waiting, id, owner)
			}
			switch {
			case matchFirst && cerr != nil:
				t.Fatalf("a creation whose ticket is in a match (%q) answered %v: a no-show", owner, cerr)
			case !matchFirst && (cerr == nil || owner != events.OwnerCancelled):
				t.Fatalf("creation answered %v, ticket claimed %q; want an error and the ticket withdrawn", cerr, owner)
			}
			outcome := map[bool]string{false: withdrawnOutcome, true: matchedFirst}[matchFirst]
			if n := testutil.ToFloat64(e.s.withdrawals.made.WithLabelValues(outcome)); n != 1 {
				t.Fatalf("%v withdrawals counted %s, want 1", n, outcome)
			}
		})
	}
}

// lateMatchClaims is the claims bucket refusing its first `refusals`
// creates for now, and its reads meanwhile; then a create lands a
// matcher's claim of the ticket and hangs until its caller gives up (its
// answer lost), and reads answer after readDelay. readLeft is the time
// the first read that answers had left.
type lateMatchClaims struct {
	jetstream.KeyValue
	creates   atomic.Int32
	readLeft  atomic.Int64
	refusals  int32
	readDelay time.Duration
}

func (k *lateMatchClaims) Create(ctx context.Context, key string, _ []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	if k.creates.Add(1) <= k.refusals {
		return 0, &jetstream.APIError{Code: http.StatusServiceUnavailable, Description: "test: no leader"}
	}
	_, _ = k.KeyValue.Create(context.WithoutCancel(ctx), key, []byte(events.MatchOwner("m-1")))
	<-ctx.Done()
	return 0, ctx.Err()
}

func (k *lateMatchClaims) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if k.creates.Load() <= k.refusals {
		return nil, &jetstream.APIError{Code: http.StatusServiceUnavailable, Description: "test: no leader"}
	}
	if d, ok := ctx.Deadline(); ok {
		k.readLeft.CompareAndSwap(0, int64(time.Until(d)))
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(k.readDelay):
	}
	return k.KeyValue.Get(ctx, key)
}

// A withdrawal's late try, whose create a matcher's claim beat and whose
// answer never came, does not take the read of the claim's time with it:
// the read finds the match and the creation answers it (review R1: the
// tries ran on the whole bound, and a try started 1.95 s in left the
// read 44 ms, so the creation answered an error, a no-show). The sixth
// create starts 0.86-1.44 s in (the backoff, give or take its jitter),
// which left the read 0.56-1.14 s before, and now leaves it 2 s.
func TestAWithdrawalsLastTryLeavesTheReadItsTime(t *testing.T) {
	t.Parallel()
	kv := &lateMatchClaims{refusals: 5, readDelay: 1200 * time.Millisecond}
	e, rec, inMatch := withdrawUnder(t, "t-late-match", func(b jetstream.KeyValue) jetstream.KeyValue {
		kv.KeyValue = b
		return kv
	})
	if owner, _ := e.s.claims.Owner(t.Context(), rec.Ticket.TicketID); owner != events.MatchOwner("m-1") {
		t.Fatalf("ticket claimed %q; the test wants it in match m-1", owner)
	}
	if !inMatch {
		t.Fatalf("ticket in match m-1 answered an error (a no-show): the claim's read had %v left", time.Duration(kv.readLeft.Load()))
	}
}

// lateWinClaims is the claims bucket refusing its first `refusals`
// creates for now; the next wins just before its caller's deadline, and a read
// of a telling's mark with less than 100 ms left hangs until it ends.
type lateWinClaims struct {
	jetstream.KeyValue
	creates  atomic.Int32
	refusals int32
}

func (k *lateWinClaims) Create(ctx context.Context, key string, v []byte, o ...jetstream.KVCreateOpt) (uint64, error) {
	switch n := k.creates.Add(1); {
	case n <= k.refusals:
		return 0, &jetstream.APIError{Code: http.StatusServiceUnavailable, Description: "test: no leader"}
	case n == k.refusals+1:
		if d, ok := ctx.Deadline(); ok {
			time.Sleep(time.Until(d) - 30*time.Millisecond)
		}
		return k.KeyValue.Create(context.WithoutCancel(ctx), key, v, o...)
	}
	return k.KeyValue.Create(ctx, key, v, o...)
}

func (k *lateWinClaims) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if d, ok := ctx.Deadline(); ok && strings.HasPrefix(key, "told.") && time.Until(d) < 100*time.Millisecond {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return k.KeyValue.Get(ctx, key)
}

// A withdrawal whose claim wins as its tries' time runs out, the telling
// cut short with it, tells the players within what is left of its bound
// (a second end finds the claim its own): its client is answered an error
// and follows nothing, but its other players, and a GET, hear why.
func TestAWithdrawalWonAsItsTriesEndIsTold(t *testing.T) {
	t.Parallel()
	kv := &lateWinClaims{refusals: 5}
	e, rec, inMatch := withdrawUnder(t, "t-late-win", func(b jetstream.KeyValue) jetstream.KeyValue {
		kv.KeyValue = b
		return kv
	})
	if inMatch {
		t.Fatal("a withdrawn ticket answered as in a match")
	}
	if owner, _ := e.s.claims.Owner(t.Context(), rec.Ticket.TicketID); owner != events.OwnerCancelled {
		t.Fatalf("ticket claimed %q, want it withdrawn", owner)
	}
	if r := e.stored(t, "pat"); r == nil || r.TicketID != rec.Ticket.TicketID || r.Status != events.StatusCancelled {
		t.Fatalf("the player's last result %+v, want the withdrawn ticket's cancellation", r)
	}
}

// withdrawUnder withdraws pat's ticket id, whose creation failed, with
// the claims bucket wrapped by wrap, and says whether the withdrawal
// found it in a match (its creation answers it then).
func withdrawUnder(t *testing.T, id string, wrap func(jetstream.KeyValue) jetstream.KeyValue) (*toldEnv, Record, bool) {
	t.Helper()
	e := newToldEnv(t)
	claims, err := events.NewClaims(t.Context(), claimsWrapped{e.js, wrap}, e.subj)
	if err != nil {
		t.Fatal(err)
	}
	e.s.claims = claims
	rec := Record{Ticket: events.Ticket{TicketID: id, PlayerID: "pat", Mode: "1v1", CreatedAt: time.Now()},
		Shard: events.Shard{Region: "eu", Tier: "gold"}}
	_, where := e.s.withdraw(t.Context(), rec, errors.New("test: the creation's writes failed"))
	return e, rec, where == fateInMatch
}
