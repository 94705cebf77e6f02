package allocator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestAServerGivenAndNotRecordedIsRecordedOnTheNextTry: a delivery's
// try was given a server by the backend, but its record of it was not
// stored (NATS timed out). The next request for the match in this
// process, a retry of the delivery or its redelivery, writes that server
// into the reservation and assigns the match, the backend asked once.
// Before, each waited, as for another request's reservation, until the
// record was stale (30 s: chaos S49e, 12 tickets 27-41 s late). A request
// in another process, which cannot know the server, still waits and does
// not ask the backend (review R16: the kube backend allocates anew on
// every call).
func TestAServerGivenAndNotRecordedIsRecordedOnTheNextTry(t *testing.T) {
	t.Parallel()
	for _, next := range []string{"retry", "redelivery"} {
		t.Run(next, func(t *testing.T) {
			t.Parallel()
			p := newPartitioned(t, false)
			p.backend.free.Store(2)
			p.kv.updates.Store(5) // every write of the server into the record
			m := pair("m-asked")
			first := nthDelivery(m, 1)
			if _, err := p.handler(first); err == nil {
				t.Fatal("a match whose server was not recorded was acked")
			}
			kept := p.recs.unrecorded
			p.recs.unrecorded = &unrecorded{} // another process
			if err := p.deliver(m, 2); !errors.Is(err, errInProgress) {
				t.Fatalf("a delivery in another process: %v, want %v", err, errInProgress)
			}
			p.recs.unrecorded = kept
			var err error
			if next == "retry" {
				_, err = p.handler(first)
			} else {
				err = p.deliver(m, 3)
			}
			if err != nil {
				t.Fatalf("the %s in this process: %v", next, err)
			}
			p.assignedOnce(t)
		})
	}
}

// A full map of servers remembered forgets those past unrecordedForget
// before it refuses a new one (review: matches whose redelivery went to
// another allocator filled it for good, and every later one waited 30 s).
func TestServersRememberedLongAgoAreForgottenWhenFull(t *testing.T) {
	ur := &unrecorded{}
	t0 := time.Now()
	for i := range maxUnrecorded {
		ur.remember(fmt.Sprintf("m-old-%d", i), unrecordedServer{token: "t", at: t0}, slog.New(slog.DiscardHandler))
	}
	ur.remember("m-new", unrecordedServer{token: "t", at: t0.Add(unrecordedForget)}, slog.New(slog.DiscardHandler))
	if _, ok := ur.recall("m-new"); !ok {
		t.Fatal("a full map of old servers refused a new one")
	}
	if _, ok := ur.recall("m-old-0"); ok {
		t.Fatal("a server past unrecordedForget was kept")
	}
}

// behindReplica is an allocations bucket whose direct gets are answered
// by a replica behind the cut: no record at all.
type behindReplica struct{ jetstream.KeyValue }

func (behindReplica) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return nil, jetstream.ErrKeyNotFound
}

// The record a remembered server is written into is read from the
// bucket's leader: a replica behind, answering that there is no record,
// made the retry drop the server and wait 30 s for the reservation (found
// rereading the change).
func TestARememberedServerIsRecordedPastAReplicaBehind(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	p.backend.free.Store(1)
	p.kv.updates.Store(5) // every write of the server into the record
	m := pair("m-behind")
	first := nthDelivery(m, 1)
	if _, err := p.handler(first); err == nil {
		t.Fatal("a match whose server was not recorded was acked")
	}
	leader, err := events.LeaderGets(p.js, p.recs.kv)
	if err != nil {
		t.Fatal(err)
	}
	p.recs.kv, p.recs.leader = behindReplica{p.recs.kv}, leader
	if _, err := p.handler(first); err != nil {
		t.Fatalf("the retry past a replica behind: %v", err)
	}
	p.assignedOnce(t)
}

// A reservation held by another delivery is read from the bucket's
// leader, which refused the create: a replica behind the cut, answering
// that there is no record, made reserve spin creates and gets, without a
// wait, until it caught up (found rereading the change; older than it).
func TestAHeldReservationIsReadPastAReplicaBehind(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	p.backend.free.Store(1)
	p.kv.lostCreates.Store(1)
	m := pair("m-held-behind")
	if err := p.deliver(m, 1); err == nil {
		t.Fatal("a match whose reservation went unanswered was acked")
	}
	leader, err := events.LeaderGets(p.js, p.recs.kv)
	if err != nil {
		t.Fatal(err)
	}
	p.recs.kv, p.recs.leader = behindReplica{p.recs.kv}, leader
	second := nthDelivery(m, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	second.SetContext(ctx)
	if _, err := p.handler(second); !errors.Is(err, errInProgress) {
		t.Fatalf("another delivery past a replica behind: %v, want %v", err, errInProgress)
	}
}
