package tickets

import (
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

// firstAckLost is a JetStream whose first async publish is stored but
// never answered (a cut that held the ack); later ones are answered.
type firstAckLost struct {
	jetstream.JetStream
	calls atomic.Int32
}

func (f *firstAckLost) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if f.calls.Add(1) == 1 {
		return lostAcks{f.JetStream}.PublishMsgAsync(m, opts...)
	}
	return f.JetStream.PublishMsgAsync(m, opts...)
}

// A ticket whose queue ack was lost is published again, and its message
// id makes the second publish the first one's: the server acks it as a
// duplicate, one ticket is queued (checkCreated), and the ticket is
// created. Before, it was withdrawn.
func TestALostQueueAckIsAskedForAgain(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	js := &firstAckLost{JetStream: e.s.js}
	e.s.js = js
	checkCreated(t, e, e.createPat(t))
	if n := js.calls.Load(); n != 2 {
		t.Fatalf("%d publishes, want 2", n)
	}
}
