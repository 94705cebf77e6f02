package tickets

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Review s5-r3 F1 and F2, after the reviewer's tests (TestR3*): a
// withdrawal that a matcher beat, and a record's put that timed out.

// matchedDuringPut is the tickets bucket whose puts fail through the
// creation's store (every try, all made with its first put's context)
// while a matcher claims the queued ticket for a match; a put with
// another context passes (the bucket's leader is back), unless down.
type matchedDuringPut struct {
	jetstream.KeyValue
	claims *events.Claims
	down   bool // every put fails
	mu     sync.Mutex
	first  context.Context
}

func (f *matchedDuringPut) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	f.mu.Lock()
	firstPut := f.first == nil
	if firstPut {
		f.first = ctx
	}
	storing := f.first == ctx
	f.mu.Unlock()
	if firstPut {
		if won, _, err := f.claims.Claim(ctx, key, events.MatchOwner("m1")); err != nil || !won {
			return 0, errors.New("test: matcher claim failed")
		}
	}
	if storing || f.down {
		return 0, &jetstream.APIError{Code: http.StatusServiceUnavailable, Description: "test: KV leader lost"}
	}
	return f.KeyValue.Put(ctx, key, value)
}

// A creation whose withdrawal loses to a match answers the ticket (202),
// its record readable and its tracking kept: an error would make it a
// no-show in someone's room.
func TestCreateAnswersATicketAMatchTookFirst(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault func(e *toldEnv) jetstream.KeyValue
	}{
		{"the record's put failed", func(e *toldEnv) jetstream.KeyValue {
			return &matchedDuringPut{KeyValue: e.s.kv, claims: e.s.claims}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newToldEnv(t)
			e.s.kv = tt.fault(e)
			err := e.createPat(t)
			id := e.queuedTicket(t)
			owner, _ := e.s.claims.Owner(t.Context(), id)
			if _, isMatch := events.OwnerMatchID(owner); !isMatch {
				t.Fatalf("ticket %s claimed %q, want a match (the test's matcher)", id, owner)
			}
			if err != nil {
				t.Fatalf("client told %v, ticket %s is matched (%s): a no-show", err, id, owner)
			}
			if _, err := e.s.Record(t.Context(), id); err != nil {
				t.Fatalf("record of the answered ticket %s: %v", id, err)
			}
		})
	}
}

// When the record cannot be stored even then, it is put in the background
// and read from this frontend meanwhile (TestAMatchedTicketWhoseRecordIs
// RefusedIsAnsweredAndStoredLater); when the frontend holds as many such
// records as it may already, the error stays (a 202 would name a ticket
// nobody can read), and it is logged as a no-show.
func TestCreateFailsAMatchedTicketWithoutARecord(t *testing.T) {
	e := newToldEnv(t)
	e.s.kv = &matchedDuringPut{KeyValue: e.s.kv, claims: e.s.claims, down: true}
	for i := range maxUnstored {
		e.s.unstored.hold(fmt.Sprint("held-", i), nil, false)
	}
	if err := e.createPat(t); err == nil {
		t.Fatal("Create answered a ticket whose record is not stored nor held")
	}
	if !strings.Contains(e.logs.String(), "a no-show") {
		t.Fatalf("no-show not logged:\n%s", e.logs.String())
	}
}

// timingOutPut is a tickets bucket whose puts each time out (as kv.Put
// does after its deadline under a partition of the bucket's leader).
type timingOutPut struct {
	jetstream.KeyValue
	puts atomic.Int32
}

func (f *timingOutPut) Put(context.Context, string, []byte) (uint64, error) {
	f.puts.Add(1)
	return 0, context.DeadlineExceeded
}

// A put that timed out is not tried again by store: it cost a whole
// call already (finish tries it again later, within its own bound).
func TestStoreDoesNotRetryATimeout(t *testing.T) {
	e := newToldEnv(t)
	kv := &timingOutPut{KeyValue: e.s.kv}
	e.s.kv = kv
	if err := e.s.store(t.Context(), "t1", []byte("{}")); err == nil {
		t.Fatal("store succeeded with no record stored")
	}
	if n := kv.puts.Load(); n != 1 {
		t.Fatalf("a put that timed out was tried %d times, want once", n)
	}
}

// All tries of a record's put share one deadline, within the per-call
// bound: retries cannot stretch a creation under a partition.
func TestStoreTriesShareOneDeadline(t *testing.T) {
	e := newToldEnv(t)
	kv := &flakyPut{KeyValue: e.s.kv, fails: 2}
	e.s.kv = kv
	if err := e.createPat(t); err != nil {
		t.Fatalf("Create after two refused puts: %v", err)
	}
	latest := time.Now().Add(events.ClaimCallTimeout)
	if len(kv.deadlines) != 3 {
		t.Fatalf("%d puts, want 3", len(kv.deadlines))
	}
	for i, d := range kv.deadlines {
		if d.IsZero() || !d.Equal(kv.deadlines[0]) || d.After(latest) {
			t.Fatalf("put %d has deadline %v, want the first put's %v (one deadline for all tries)", i, d, kv.deadlines[0])
		}
	}
}

// A withdrawal whose claim won but whose telling failed (here the results
// stream is gone) kept the ticket out of every match: it is not logged as
// a ticket left matchable (review s5-r3 F6).
func TestWithdrawnButUntoldIsNotLoggedAsMatchable(t *testing.T) {
	e := newToldEnv(t)
	e.s.kv = &flakyPut{KeyValue: e.s.kv, fails: 1 << 30}
	if err := e.js.DeleteStream(t.Context(), e.subj.ResultsStream()); err != nil {
		t.Fatal(err)
	}
	if err := e.createPat(t); err == nil {
		t.Fatal("Create succeeded without its record")
	}
	id := e.queuedTicket(t)
	if owner, err := e.s.claims.Owner(t.Context(), id); err != nil || owner != events.OwnerCancelled {
		t.Fatalf("ticket %s claimed %q (%v), want cancelled", id, owner, err)
	}
	if logs := e.logs.String(); strings.Contains(logs, "not withdrawn") || !strings.Contains(logs, "claimed cancelled") {
		t.Fatalf("a withdrawn ticket logged as not withdrawn, or not as claimed cancelled:\n%s", logs)
	}
}
