package tickets

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// checkCreated fails unless pat's one ticket is created as a 202 says:
// queued once, its record stored, and claimed by nobody.
func checkCreated(t *testing.T, e *toldEnv, createErr error) {
	t.Helper()
	if createErr != nil {
		t.Fatalf("Create: %v", createErr)
	}
	id := e.queuedTicket(t)
	if id == "" {
		t.Fatal("nothing queued")
	}
	if _, err := e.s.Record(t.Context(), id); err != nil {
		t.Fatalf("record of %s: %v", id, err)
	}
	if owner, err := e.s.claims.Owner(t.Context(), id); err != nil || owner != "" {
		t.Fatalf("claim %q %v, want none", owner, err)
	}
}

// A record whose put is refused past the store's own tries (a tickets
// bucket without a leader for a moment longer), while its ticket is
// queued, is put again on a later try, and the ticket created. Before,
// it was withdrawn and its client told an error, and a matcher had often
// put it in a match first (chaos S49: 136 such no-shows in five minutes).
func TestARecordRefusedAtFirstIsStoredOnALaterTry(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	kv := &flakyPut{KeyValue: e.s.kv, fails: int32(len(putBackoff))}
	e.s.kv = kv
	checkCreated(t, e, e.createPat(t))
	if n := kv.puts.Load(); n != int32(len(putBackoff))+1 {
		t.Fatalf("%d puts, want the store's %d and one later", n, len(putBackoff))
	}
}

// asyncAcksLost is a JetStream whose async publishes are stored but
// never answered (a cut that held their acks), and that counts them;
// a PublishMsg is answered.
type asyncAcksLost struct {
	jetstream.JetStream
	calls atomic.Int32
}

func (f *asyncAcksLost) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f.calls.Add(1)
	return lostAcks{f.JetStream}.PublishMsgAsync(m, opts...)
}

// A ticket whose queue ack was lost is published again, and its message
// id makes the second publish the first one's: the server acks it as a
// duplicate, one ticket is queued (checkCreated), and the ticket is
// created. Before, it was withdrawn. The second publish is awaited, not
// left in the client's table of async acks (review: under a cut each
// creation's tries filled it four times as fast, and past its 4,000
// every creation failed).
func TestALostQueueAckIsAskedForAgain(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	js := &asyncAcksLost{JetStream: e.s.js}
	e.s.js = js
	checkCreated(t, e, e.createPat(t))
	if n := js.calls.Load(); n != 1 {
		t.Fatalf("%d async publishes, want 1: the later tries are awaited", n)
	}
}

// refusingPut is a tickets bucket that refuses every put for good (a
// full bucket): not a refusal that passes.
type refusingPut struct {
	jetstream.KeyValue
	puts atomic.Int32
}

func (f *refusingPut) Put(context.Context, string, []byte) (uint64, error) {
	f.puts.Add(1)
	return 0, &jetstream.APIError{Code: http.StatusBadRequest, Description: "test: maximum bytes exceeded"}
}

// A refusal that will not pass ends the later tries at once: the ticket
// is withdrawn, not left queued and live for finishWithin more.
func TestALastingRefusalIsNotTriedFor6s(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	kv := &refusingPut{KeyValue: e.s.kv}
	e.s.kv = kv
	notices := e.cancelNotices(t)
	checkWithdrawn(t, e, e.createPat(t), notices)
	if n := kv.puts.Load(); n != 2 {
		t.Fatalf("%d puts, want the store's one and one later try", n)
	}
}

// A frontend that stops ends the later tries of a creation under way:
// it withdraws its ticket and answers at once, within the shutdown's
// grace, where it would have tried for finishWithin more.
func TestAStopEndsACreationsLaterTries(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	kv := &timingOutPut{KeyValue: e.s.kv}
	e.s.kv = kv
	done := make(chan error, 1)
	go func() { done <- e.createPat(t) }()
	testkit.Eventually(t, 5*time.Second, func() bool { return kv.puts.Load() >= 2 }, "no later try of the put")
	e.s.Stop()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Create answered success with no record stored")
		}
	case <-time.After(finishWithin - time.Second):
		t.Fatal("the creation kept trying its writes after the stop")
	}
}

// An ack already come counts even when the deadline passed too (a put
// that took the whole call's bound): a select over both picked at random
// (review: 97 of 200).
func TestAnAckComeCountsPastTheDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for range 200 {
		ok := make(chan *jetstream.PubAck, 1)
		ok <- &jetstream.PubAck{Stream: "TICKETS", Sequence: 1}
		if err := awaitAck(ctx, readyAck{ok}); err != nil {
			t.Fatalf("an ack that had come was read as %v", err)
		}
	}
}

type readyAck struct{ ok chan *jetstream.PubAck }

func (r readyAck) Ok() <-chan *jetstream.PubAck { return r.ok }
func (readyAck) Err() <-chan error              { return nil }
func (readyAck) Msg() *nats.Msg                 { return nil }

// staleGets is a tickets bucket read from a replica behind the others: a
// direct get does not find what the leader stored.
type staleGets struct{ jetstream.KeyValue }

func (staleGets) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return nil, jetstream.ErrKeyNotFound
}

// The record of a ticket whose writes went through on a later try, which
// a replica behind has not got yet, is read from the leader: the client
// that follows its ticket right after the 202 finds it. Before, it heard
// 404 (chaos S49e: 3 clients, after creations whose put was acked by two
// replicas while the third was cut off). A ticket whose writes went
// through at once is not asked of the leader (review: every id not found
// would cost two reads).
func TestALateRecordAReplicaHasNotGotIsReadFromTheLeader(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	e.s.kv = &flakyPut{KeyValue: e.s.kv, fails: int32(len(putBackoff))}
	checkCreated(t, e, e.createPat(t))
	late := e.queuedTicket(t)
	on := e.create(t, "sam")
	e.s.kv = staleGets{e.s.kv}
	if _, err := e.s.Record(t.Context(), late); err != nil {
		t.Fatalf("record of %s, created on a later try: %v", late, err)
	}
	if _, err := e.s.Record(t.Context(), on); !errors.Is(err, ErrNotFound) {
		t.Fatalf("record of %s, created at once, that a replica has not got: %v, want ErrNotFound", on, err)
	}
}
