package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// A server given whose record's write failed is written into its
// reservation by the allocator that was given it, once NATS answers
// again, with no request of the match: a request in another allocator,
// which cannot know the server, finds it then, where it waited for the
// reservation to go stale (30 s; chaos S51b).
func TestAServerNotRecordedIsFoundByAnotherAllocator(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	p.recs.reconciled = newMetrics().reconciled
	p.backend.free.Store(1)
	p.kv.updates.Store(5) // every write of the server into the record
	m := pair("m-reconcile")
	if _, err := p.ended()(nthDelivery(m, 1)); err == nil {
		t.Fatal("a match whose server was not recorded was acked")
	}
	p.kv.updates.Store(0) // the heal
	p.recs.reconcileOnce(t.Context())
	p.recs.unrecorded = &unrecorded{} // another allocator's request
	if err := p.deliver(m, 2); err != nil {
		t.Fatalf("a request in another allocator: %v", err)
	}
	p.assignedOnce(t)
	p.reconciledOnce(t, "server_recorded")
}

// A reservation a delivery left without asking the backend is deleted
// by its allocator once NATS answers again: a request in another
// allocator reserves the match at once, where it waited for the
// reservation to go stale (30 s; chaos S51b). A record that is no longer
// that reservation is left alone.
func TestAnUnaskedReservationIsDeletedForAnotherAllocator(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	p.recs.unasked, p.recs.reconciled = &unasked{}, newMetrics().reconciled
	p.backend.free.Store(1)
	p.kv.lostCreates.Store(1)
	m := pair("m-giveback")
	if _, err := p.ended()(nthDelivery(m, 1)); err == nil {
		t.Fatal("a match whose reservation went unanswered was acked")
	}
	p.recs.reconcileOnce(t.Context())
	kept := p.recs.unasked
	p.recs.unasked = &unasked{} // another allocator's request
	if err := p.deliver(m, 2); err != nil {
		t.Fatalf("a request in another allocator: %v", err)
	}
	p.assignedOnce(t)
	if len(kept.all()) != 0 {
		t.Fatalf("reservations still kept after their delete: %v", kept.all())
	}
	p.reconciledOnce(t, "unasked_deleted")
	p.recs.unasked = kept
	held, _ := json.Marshal(record{Pending: time.Now().UnixMilli(), Delivery: "allocating"})
	if _, err := p.kv.Create(t.Context(), "m-held", held); err != nil {
		t.Fatal(err)
	}
	kept.leave("m-held", "another", time.Now())
	kept.leave(m.MatchID, "yet-another", time.Now())
	p.recs.reconcileOnce(t.Context())
	if r, ok, err := p.recs.placed(t.Context(), m.MatchID); err != nil || !ok {
		t.Fatalf("the match's record after a delete of another delivery's: %+v, %v, %v", r, ok, err)
	}
	if e, err := p.kv.Get(t.Context(), "m-held"); err != nil || string(e.Value()) != string(held) {
		t.Fatalf("a reservation being allocated after a delete of another delivery's: %v", err)
	}
	if len(kept.all()) != 0 {
		t.Fatalf("reservations that are not the records' still kept: %v", kept.all())
	}
}

// replicaBehind is nats.go's create while the bucket's leader holds the
// key deleted and the replica that answers direct gets still holds the
// record: the create at revision 0 is refused at the leader, and the
// read that follows finds the record, so it says the key exists.
type replicaBehind struct {
	jetstream.KeyValue
	creates atomic.Int64
}

func (r *replicaBehind) Create(ctx context.Context, key string, value []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	r.creates.Add(1)
	if rev, err := r.Update(ctx, key, value, 0); err == nil {
		return rev, nil
	}
	return 0, jetstream.ErrKeyExists
}

// A reservation deleted while a replica behind still holds it is
// created again a few times, spaced, and then left to the delivery's
// retries: reserve spun creates and leader reads with no wait until the
// replica caught up (review R1: 2,745 creates in 500 ms).
func TestADeletedReservationHeldAtAReplicaIsNotSpunOn(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	p.recs.unasked = &unasked{}
	p.backend.free.Store(1)
	p.kv.lostCreates.Store(1)
	m := pair("m-spin")
	if _, err := p.ended()(nthDelivery(m, 1)); err == nil {
		t.Fatal("a match whose reservation went unanswered was acked")
	}
	p.recs.reconcileOnce(t.Context()) // deleted at the leader
	leader, err := events.LeaderGets(p.js, p.kv.KeyValue)
	if err != nil {
		t.Fatal(err)
	}
	behind := &replicaBehind{KeyValue: p.kv.KeyValue}
	p.recs.kv, p.recs.leader, p.recs.unasked = behind, leader, &unasked{} // another allocator's request
	msg := nthDelivery(m, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	msg.SetContext(ctx)
	if _, err := p.handler(msg); !errors.Is(err, errReplicaBehind) || behind.creates.Load() > reserveDeletedTries+1 {
		t.Fatalf("a request past a replica behind: %v after %d creates; want %v after %d at most",
			err, behind.creates.Load(), errReplicaBehind, reserveDeletedTries+1)
	}
}

// failFirstGet runs before on its first Get, which then times out.
type failFirstGet struct {
	jetstream.KeyValue
	before func()
	n      atomic.Int32
}

func (f *failFirstGet) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if f.n.Add(1) == 1 {
		f.before()
		return nil, context.DeadlineExceeded
	}
	return f.KeyValue.Get(ctx, key)
}

// A server reconcile could not record is put back only if no other was
// remembered for its match meanwhile: a request's newer server, given
// under the reservation the record holds, was overwritten by the older
// one, lost, and its match waited 30 s (review R2).
func TestAReconcileKeepsAServerRememberedMeanwhile(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	m := pair("m-newer")
	held, _ := json.Marshal(record{Pending: time.Now().UnixMilli(), Delivery: "t3"})
	if _, err := p.kv.Create(t.Context(), m.MatchID, held); err != nil {
		t.Fatal(err)
	}
	s1, s3 := Server{Name: "s1"}, Server{Name: "s3"}
	p.recs.unrecorded.remember(m.MatchID, unrecordedServer{token: "t1", rec: record{Server: &s1}, at: time.Now()}, p.recs.log)
	p.recs.leader = &failFirstGet{KeyValue: p.kv.KeyValue, before: func() {
		p.recs.unrecorded.remember(m.MatchID, unrecordedServer{token: "t3", rec: record{Server: &s3}, at: time.Now()}, p.recs.log)
	}}
	p.recs.reconcileOnce(t.Context())
	if u, _ := p.recs.unrecorded.recall(m.MatchID); u.token != "t3" {
		t.Fatalf("remembered %q's server; want t3's, the record's", u.token)
	}
}

// timedOutGets is a bucket whose every read times out, counted.
type timedOutGets struct {
	jetstream.KeyValue
	gets atomic.Int32
}

func (g *timedOutGets) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	g.gets.Add(1)
	return nil, context.DeadlineExceeded
}

// A pass under a cut ends at the first record NATS does not answer,
// and forgets, unread, the reservations past their life: one call's
// bound a pass, not one per record kept (up to 20,480 of them).
func TestAReconcilePassEndsAtTheFirstUnanswered(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	cut := &timedOutGets{KeyValue: p.kv.KeyValue}
	p.recs.unasked, p.recs.leader = &unasked{}, cut
	now := time.Now()
	for i := range 10 {
		p.recs.unasked.leave(fmt.Sprintf("m-%d", i), fmt.Sprintf("d-%d", i), now)
	}
	p.recs.unasked.leave("m-old", "d-old", now.Add(-events.AllocatorReservationStale))
	p.recs.reconcileOnce(t.Context())
	if n, kept := cut.gets.Load(), len(p.recs.unasked.all()); n != 1 || kept != 10 {
		t.Fatalf("%d reads in a pass, %d reservations kept; want 1 read, the 10 fresh ones kept", n, kept)
	}
}
