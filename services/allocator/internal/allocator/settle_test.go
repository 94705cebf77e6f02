package allocator

import (
	"encoding/json"
	"testing"
	"time"

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
	p.backend.free.Store(1)
	p.kv.updates.Store(5) // every write of the server into the record
	m := pair("m-settle")
	if _, err := p.ended()(nthDelivery(m, 1)); err == nil {
		t.Fatal("a match whose server was not recorded was acked")
	}
	p.kv.updates.Store(0) // the heal
	p.recs.settleOnce(t.Context())
	p.recs.unrecorded = &unrecorded{} // another allocator's request
	if err := p.deliver(m, 2); err != nil {
		t.Fatalf("a request in another allocator: %v", err)
	}
	if n, c := p.told(t), p.backend.calls.Load(); n[events.StatusAssigned] != 2 || len(n) != 1 || c != 1 {
		t.Fatalf("results %v, %d backend calls; want 2 assigned, 1 call", n, c)
	}
}

// A reservation a delivery left without asking the backend is given back
// by its allocator once NATS answers again: a request in another
// allocator reserves the match at once, where it waited for the
// reservation to go stale (30 s; chaos S51b). A record that is no longer
// that reservation is left alone.
func TestAReservationLeftIsGivenBackForAnotherAllocator(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	p.recs.left = &left{}
	p.backend.free.Store(1)
	p.kv.lostCreates.Store(1)
	m := pair("m-giveback")
	if _, err := p.ended()(nthDelivery(m, 1)); err == nil {
		t.Fatal("a match whose reservation went unanswered was acked")
	}
	p.recs.settleOnce(t.Context())
	kept := p.recs.left
	p.recs.left = &left{} // another allocator's request
	if err := p.deliver(m, 2); err != nil {
		t.Fatalf("a request in another allocator: %v", err)
	}
	if n, c := p.told(t), p.backend.calls.Load(); n[events.StatusAssigned] != 2 || len(n) != 1 || c != 1 {
		t.Fatalf("results %v, %d backend calls; want 2 assigned, 1 call", n, c)
	}
	if len(kept.all()) != 0 {
		t.Fatalf("reservations still kept after their give-back: %v", kept.all())
	}
	p.recs.left = kept
	held, _ := json.Marshal(record{Pending: time.Now().UnixMilli(), Delivery: "allocating"})
	if _, err := p.kv.Create(t.Context(), "m-held", held); err != nil {
		t.Fatal(err)
	}
	kept.leave("m-held", "another", time.Now())
	kept.leave(m.MatchID, "yet-another", time.Now())
	p.recs.settleOnce(t.Context())
	if r, ok, err := p.recs.placed(t.Context(), m.MatchID); err != nil || !ok {
		t.Fatalf("the match's record after a give-back of another delivery's: %+v, %v, %v", r, ok, err)
	}
	if e, err := p.kv.Get(t.Context(), "m-held"); err != nil || string(e.Value()) != string(held) {
		t.Fatalf("a reservation being allocated after a give-back of another delivery's: %v", err)
	}
	if len(kept.all()) != 0 {
		t.Fatalf("reservations that are not the records' still kept: %v", kept.all())
	}
}
