package allocator

import (
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// showing is a BackfillSource whose rooms' requests the test sets.
type showing struct {
	mu   sync.Mutex
	reqs []play.Backfill
}

func (s *showing) Backfills() ([]play.Backfill, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs, true
}

// TestRequestsAreAskedAgainWhileTheyShow: a request is published when it
// first shows, not on every poll, again once the duplicate window has
// passed if the room still asks (a matcher that let it go unfilled then
// takes it anew, with a new wait), and at once when it shows again after
// it showed no more.
func TestRequestsAreAskedAgainWhileTheyShow(t *testing.T) {
	t.Parallel()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), subj.MatchesBucket())
	if err != nil {
		t.Fatal(err)
	}
	room := events.Match{MatchID: "r1", Mode: "2v2", Region: "eu", Tier: "gold", Tickets: []events.MatchTicket{
		{TicketID: "t1", Players: []string{"a", "b"}, Skill: 1600}, {TicketID: "t2", Players: []string{"c", "d"}, Skill: 1700}}}
	data, _ := json.Marshal(room)
	if _, err := kv.Put(t.Context(), "r1", data); err != nil {
		t.Fatal(err)
	}
	published := testkit.Collect(t, js.Conn(), subj.AllBackfills())
	src := &showing{reqs: []play.Backfill{{MatchID: "r1", Ask: 1, Seats: []int{1, 0}}}}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	allocs, err := js.KeyValue(t.Context(), subj.AllocationsBucket())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	recs := &records{kv: allocs, log: log, now: func() time.Time { return now }}
	rq := &requester{rooms: &rooms{matches: kv, src: src, records: recs}, pub: events.NewPublisher(js, subj),
		log: log, now: func() time.Time { return now }, due: map[string]time.Time{}}
	created := func(i int) time.Time {
		t.Helper()
		testkit.Eventually(t, 5*time.Second, func() bool { return len(published()) > i }, "publish %d never came", i+1)
		b, err := events.DecodeBackfill(published()[i].Data)
		if err != nil || b.Skill != 1650 || b.BackfillID != "r1-b1" {
			t.Fatalf("request %d: %+v %v", i+1, b, err)
		}
		return b.CreatedAt
	}
	settled := func(want int) {
		t.Helper()
		time.Sleep(100 * time.Millisecond)
		if n := len(published()); n != want {
			t.Fatalf("%d publishes, want %d", n, want)
		}
	}

	rq.poll(t.Context())
	if c := created(0); !c.Equal(now) {
		t.Fatalf("first request created %s, want %s", c, now)
	}
	now = now.Add(askAgain - time.Second)
	rq.poll(t.Context())
	settled(1)
	now = now.Add(time.Second)
	rq.poll(t.Context())
	if c := created(1); !c.Equal(now) {
		t.Fatalf("asked again with created_at %s, want %s (a new wait)", c, now)
	}
	src.mu.Lock()
	src.reqs = nil
	src.mu.Unlock()
	rq.poll(t.Context())
	src.mu.Lock()
	src.reqs = []play.Backfill{{MatchID: "r1", Ask: 1, Seats: []int{1, 0}}}
	src.mu.Unlock()
	now = now.Add(time.Second)
	rq.poll(t.Context())
	created(2)
	settled(3)
}
