package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestOpenRoomsOutliveTheirRecordsAge: the records of a room shown open by
// its own server, whose mode accepts backfill, are refreshed past their
// buckets' age: its allocation record, and its match copied to the rooms
// bucket, where a backfill reads it once the matches bucket forgot it.
// A server that misses a poll now and then (its rooms show not at all)
// delays nothing either. Those of a room shown by a server it does not
// run on, of a room that
// takes no backfill, and of one no longer shown are not; a server that
// shows another's room delays its refresh in nothing. The buckets here
// forget a record after 2 s (an hour and a half in the topology), and
// the refresher writes a record again once it is 500 ms old.
func TestOpenRoomsOutliveTheirRecordsAge(t *testing.T) {
	t.Parallel()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	const age = 2 * time.Second
	bucket := func(name string) jetstream.KeyValue {
		kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: name, TTL: age})
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
	matches, roomMatches, allocs := bucket("matches"), bucket("roommatches"), bucket("allocations")
	room := func(id string, srv Server, backfill bool) {
		m := events.Match{MatchID: id, Mode: "2v2", Region: "eu", Tier: "gold", AcceptsBackfill: backfill, Tickets: []events.MatchTicket{
			{TicketID: id + "-t1", Players: []string{id + "a", id + "b"}}, {TicketID: id + "-t2", Players: []string{id + "c", id + "d"}, Team: 1}}}
		data, _ := json.Marshal(m)
		rec, _ := json.Marshal(record{Server: &srv})
		if _, err := matches.Put(t.Context(), id, data); err != nil {
			t.Fatal(err)
		}
		if _, err := allocs.Put(t.Context(), id, rec); err != nil {
			t.Fatal(err)
		}
	}
	gs2 := Server{Name: "gs-2"}
	room("long", gs1, true)
	room("other", gs2, true) // runs on gs-2, shown by gs-1 below
	room("nobackfill", gs1, false)
	room("ended", gs1, true) // shown for a while, then no more
	src := &showing{}
	show := func(ids ...string) {
		src.mu.Lock()
		defer src.mu.Unlock()
		// A hostile server shows the long room first: it delays nothing.
		src.open = []ShownRoom{{MatchID: "long", Server: Server{Name: "evil"}}}
		for _, id := range ids {
			src.open = append(src.open, ShownRoom{MatchID: id, Server: Server{Name: gs1.Name}})
		}
	}
	show("long", "other", "nobackfill", "ended")
	f := newRefresher(matches, roomMatches, allocs, src, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	f.after = age / 4
	start := time.Now()
	for i := 0; time.Since(start) < 3*age; i++ {
		time.Sleep(50 * time.Millisecond)
		switch {
		case i%4 == 3:
			// Its server missed a poll: its rooms show not at all.
			show()
		case time.Since(start) > age/2:
			show("long", "other", "nobackfill")
		}
		f.pass(t.Context())
	}
	for _, c := range []struct {
		id        string
		refreshed bool
	}{{"long", true}, {"other", false}, {"nobackfill", false}, {"ended", false}} {
		for _, kv := range []jetstream.KeyValue{roomMatches, allocs} {
			_, err := kv.Get(t.Context(), c.id)
			if gone := errors.Is(err, jetstream.ErrKeyNotFound); gone == c.refreshed || (err != nil && !gone) {
				t.Errorf("room %s in %s after %s: refreshed %v, want %v (err %v)", c.id, kv.Bucket(), 3*age, !gone, c.refreshed, err)
			}
		}
	}
	rs := &rooms{matches: matches, roomMatches: roomMatches, src: src}
	if m, err := rs.match(t.Context(), "long"); err != nil || m.MatchID != "long" {
		t.Fatalf("the long room's match, once the matches bucket forgot it: %+v, %v", m, err)
	}
}

// TestRefreshLosesNoPromise: a record written between the refresher's read
// and its write (a promise of seats) is not written over with the older
// value: the refresher's write is at the revision it read.
func TestRefreshLosesNoPromise(t *testing.T) {
	t.Parallel()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	subj := events.Subjects{}
	matches, _ := js.KeyValue(t.Context(), subj.MatchesBucket())
	roomMatches, _ := js.KeyValue(t.Context(), subj.RoomMatchesBucket())
	allocs, _ := js.KeyValue(t.Context(), subj.AllocationsBucket())
	m := events.Match{MatchID: "r1", Mode: "2v2", Region: "eu", Tier: "gold", AcceptsBackfill: true, Tickets: []events.MatchTicket{
		{TicketID: "t1", Players: []string{"a", "b"}}, {TicketID: "t2", Players: []string{"c", "d"}, Team: 1}}}
	data, _ := json.Marshal(m)
	rec, _ := json.Marshal(record{Server: &gs1})
	if _, err := matches.Put(t.Context(), "r1", data); err != nil {
		t.Fatal(err)
	}
	if _, err := allocs.Put(t.Context(), "r1", rec); err != nil {
		t.Fatal(err)
	}
	// The allocations bucket as the refresher sees it: a promise is written
	// right after each read.
	promised, _ := json.Marshal(record{Server: &gs1, Promised: []promise{{Match: "f1", Teams: []int{1}}}})
	racing := &promiseAfterGet{KeyValue: allocs, put: func() {
		if _, err := allocs.Put(t.Context(), "r1", promised); err != nil {
			t.Error(err)
		}
	}}
	src := &showing{open: []ShownRoom{{MatchID: "r1", Server: Server{Name: gs1.Name}}}}
	f := newRefresher(matches, roomMatches, racing, src, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	f.after = 0         // every record is old enough to be written again
	f.pass(t.Context()) // the room shows first
	f.pass(t.Context())
	e, err := allocs.Get(t.Context(), "r1")
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Value()) != string(promised) {
		t.Fatalf("allocation record %s after the refresh, want the promise written meanwhile %s", e.Value(), promised)
	}
}

// promiseAfterGet is a bucket that calls put after each Get.
type promiseAfterGet struct {
	jetstream.KeyValue
	put func()
}

func (p *promiseAfterGet) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	e, err := p.KeyValue.Get(ctx, key)
	p.put()
	return e, err
}

// hungKV is a bucket whose reads wait until their context ends (a cut
// replica), counting them.
type hungKV struct {
	jetstream.KeyValue
	reads atomic.Int32
}

func (h *hungKV) Get(ctx context.Context, _ string) (jetstream.KeyValueEntry, error) {
	h.reads.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestRefreshPassEndsAtNATSNotAnswering: a pass runs on the goroutine
// that publishes the rooms' backfill requests. With NATS not answering
// (each read held), it does not wait on every due room in turn, nor on
// a read past refreshCallTimeout: it ends at its first failed look, and
// the others are looked at later.
func TestRefreshPassEndsAtNATSNotAnswering(t *testing.T) {
	t.Parallel()
	hung := &hungKV{}
	src := &showing{}
	for i := range 5 {
		src.open = append(src.open, ShownRoom{MatchID: fmt.Sprintf("r%d", i), Server: Server{Name: gs1.Name}})
	}
	f := newRefresher(hung, hung, hung, src, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	f.after = 0 // every room is due at its second showing
	f.pass(t.Context())
	done := make(chan struct{})
	go func() { f.pass(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * refreshCallTimeout):
		t.Fatal("a pass waited on a held read with no bound")
	}
	if n := hung.reads.Load(); n != 1 {
		t.Fatalf("%d reads in a pass with NATS not answering, want 1: it ends at its first failed look", n)
	}
}

// TestAServerShowingNewRoomsEverySecondIsBounded: the rooms a server
// showed were each remembered for askAgain; one that showed 1,000 new
// ids a second (a compromised one) left 121,000 in each of the
// refresher's maps. Each server's are bounded, and forgotten as before.
func TestAServerShowingNewRoomsEverySecondIsBounded(t *testing.T) {
	t.Parallel()
	hung := &hungKV{}
	src := &showing{}
	now := time.Now()
	f := newRefresher(hung, hung, hung, src, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now })
	for pass := range 10 {
		src.open = src.open[:0]
		for i := range MaxRoomsShown {
			src.open = append(src.open, ShownRoom{MatchID: fmt.Sprintf("r%d-%d", pass, i), Server: Server{Name: "evil"}})
		}
		f.pass(t.Context())
		now = now.Add(time.Second)
	}
	if len(f.shown) > rememberedPerServer || len(f.due) > rememberedPerServer {
		t.Fatalf("%d rooms shown and %d due remembered for one server, bound %d", len(f.shown), len(f.due), rememberedPerServer)
	}
	// Another server's rooms are its own to count.
	src.open = []ShownRoom{{MatchID: "honest", Server: Server{Name: "gs-1"}}}
	f.pass(t.Context())
	if _, ok := f.shown[roomKey{serverKey{"", "gs-1"}, "honest"}]; !ok {
		t.Fatal("another server's room not remembered")
	}
	// Once forgotten (at the end of a pass), the server's new rooms count
	// again.
	now = now.Add(2 * askAgain)
	src.open = []ShownRoom{{MatchID: "later", Server: Server{Name: "evil"}}}
	f.pass(t.Context())
	f.pass(t.Context())
	if n := f.remembered[serverKey{"", "evil"}]; n != 1 {
		t.Fatalf("%d of evil's rooms remembered after the old ones went, want 1", n)
	}
}

// TestARoomWithNoMatchRecordIsLookedAtAgainLate: the matchers store no
// record of most matches (their claims carry them: events.HeaderMatch),
// only of those whose room takes backfill. A room shown open with an
// allocation record but no match record is one that takes none: it is
// not refreshed, with no error to log, and not looked at again for
// `after`, as a room found to take no backfill; not every askAgain, as
// a record missing by a fault is.
func TestARoomWithNoMatchRecordIsLookedAtAgainLate(t *testing.T) {
	t.Parallel()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	bucket := func(name string) jetstream.KeyValue {
		kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: name})
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
	matches, roomMatches, allocs := bucket("matches"), bucket("roommatches"), bucket("allocations")
	rec, _ := json.Marshal(record{Server: &gs1})
	if _, err := allocs.Put(t.Context(), "m1v1", rec); err != nil {
		t.Fatal(err)
	}
	f := newRefresher(matches, roomMatches, allocs, &showing{}, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	now := time.Now()
	next, outcome, err := f.refresh(t.Context(), ShownRoom{MatchID: "m1v1", Server: gs1}, now)
	if err != nil || outcome != "not_refreshed" || !next.Equal(now.Add(f.after)) {
		t.Fatalf("refresh = %s, %q, %v; want not_refreshed, no error, looked at again after %s", next.Sub(now), outcome, err, f.after)
	}
}
