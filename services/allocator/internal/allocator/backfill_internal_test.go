package allocator

import (
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// showing is a BackfillSource whose rooms' requests the test sets, all
// shown by game server gs-1.
type showing struct {
	mu   sync.Mutex
	reqs []play.Backfill
	// others are shown by other servers, before gs-1's.
	others []ShownBackfill
	// seated are the players gs-1 shows seated with its requests.
	seated []string
	// open are the rooms shown open, by any server.
	open []ShownRoom
}

// gs1 is the game server the tests' rooms run on.
var gs1 = Server{Name: "gs-1", Address: "127.0.0.1", Port: 7000}

func (s *showing) Backfills() ([]ShownBackfill, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.others)
	for _, b := range s.reqs {
		out = append(out, ShownBackfill{Backfill: b, Server: Server{Name: gs1.Name}, Seated: s.seated})
	}
	return out, true
}

func (s *showing) RoomBackfills(roomID string) ([]ShownBackfill, bool) {
	all, known := s.Backfills()
	return slices.DeleteFunc(all, func(b ShownBackfill) bool { return b.MatchID != roomID }), known
}

func (s *showing) Rooms() ([]ShownRoom, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.open), true
}

// set makes the rooms show reqs.
func (s *showing) set(reqs ...play.Backfill) {
	s.mu.Lock()
	s.reqs = reqs
	s.mu.Unlock()
}

// seat makes gs-1 show players seated.
func (s *showing) seat(players ...string) {
	s.mu.Lock()
	s.seated = players
	s.mu.Unlock()
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
		{TicketID: "t1", Players: []string{"a", "b"}, Skill: 1600}, {TicketID: "t2", Players: []string{"c", "d"}, Skill: 1700, Team: 1}}}
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
	rec, _ := json.Marshal(record{Server: &gs1})
	if _, err := allocs.Put(t.Context(), "r1", rec); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	recs := &records{kv: allocs, log: log, now: func() time.Time { return now }}
	rq := newRequester(&rooms{matches: kv, src: src, records: recs, turnover: backfillDefaults.Turnover}, events.NewPublisher(js, subj), time.Second, log, func() time.Time { return now })
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
	src.set()
	rq.poll(t.Context())
	src.set(play.Backfill{MatchID: "r1", Ask: 1, Seats: []int{1, 0}})
	now = now.Add(time.Second)
	rq.poll(t.Context())
	created(2)
	settled(3)
}

// TestARoomsNewAskWaitsForItsInterval: a room that changes its Ask on
// every poll (a second apart) has one published per MinInterval (5s),
// the latest it shows when the interval ends; the Asks in between are
// never published. Another server that shows the room's requests, with
// a new Ask every poll too, is refused once per askAgain (logged, and
// counted as refused_server) and delays none of them.
func TestARoomsNewAskWaitsForItsInterval(t *testing.T) {
	t.Parallel()
	e := newPromiseEnv(t)
	published := testkit.Collect(t, e.js.Conn(), e.subj.AllBackfills())
	src := &showing{}
	rq := newRequester(&rooms{matches: e.matches, src: src, records: e.recs, turnover: backfillDefaults.Turnover}, events.NewPublisher(e.js, e.subj), 5*time.Second, e.recs.log, e.clock)
	var want []string
	for ask := 1; ask <= 12; ask++ {
		src.mu.Lock()
		src.reqs = []play.Backfill{{MatchID: "r1", Ask: ask, Seats: []int{0, 1}}}
		src.others = []ShownBackfill{{Backfill: play.Backfill{MatchID: "r1", Ask: 100 + ask, Seats: []int{2, 2}}, Server: Server{Name: "gs-2"}}}
		src.mu.Unlock()
		rq.poll(t.Context())
		if ask%5 == 1 { // at 0s, 5s, 10s
			want = append(want, play.BackfillID("r1", ask))
			testkit.Eventually(t, 5*time.Second, func() bool { return len(published()) == len(want) }, "ask %d not published", ask)
		}
		e.wait(time.Second)
	}
	time.Sleep(100 * time.Millisecond)
	var got []string
	for _, msg := range published() {
		b, err := events.DecodeBackfill(msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.BackfillID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("published %v, want %v", got, want)
	}
	refused := rq.outcomes.WithLabelValues("refused_server")
	if n := testutil.ToFloat64(refused); n != 1 {
		t.Fatalf("gs-2's requests for r1 refused %v times in 12s, want once", n)
	}
	e.wait(askAgain)
	rq.poll(t.Context())
	if n := testutil.ToFloat64(refused); n != 2 {
		t.Fatalf("gs-2's requests for r1 refused %v times after askAgain, want twice", n)
	}
}

// TestARoomThatFlipsItsAskIsLookedAtOncePerInterval: a room that shows
// Ask 1 and Ask 2 in turn, a second apart, is published once per
// MinInterval (5s), not each time Ask 1 shows again.
func TestARoomThatFlipsItsAskIsLookedAtOncePerInterval(t *testing.T) {
	t.Parallel()
	e := newPromiseEnv(t)
	src := &showing{}
	rq := newRequester(&rooms{matches: e.matches, src: src, records: e.recs, turnover: backfillDefaults.Turnover}, events.NewPublisher(e.js, e.subj), 5*time.Second, e.recs.log, e.clock)
	for i := range 10 {
		src.set(play.Backfill{MatchID: "r1", Ask: 1 + i%2, Seats: []int{0, 1}})
		rq.poll(t.Context())
		e.wait(time.Second)
	}
	if n := testutil.ToFloat64(rq.outcomes.WithLabelValues("published")); n != 2 {
		t.Fatalf("published %v times in 10s, want twice (at 0s and 5s)", n)
	}
}
