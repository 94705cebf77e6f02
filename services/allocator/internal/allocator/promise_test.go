package allocator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// promiseEnv is a provisioned NATS with room r1 allocated on gs-1 (its
// record), its match (alice and bob against carol and dave) recorded,
// and a clock the test moves.
type promiseEnv struct {
	js      jetstream.JetStream
	subj    events.Subjects
	matches jetstream.KeyValue
	recs    *records
	mu      sync.Mutex
	now     time.Time
}

func newPromiseEnv(t *testing.T) *promiseEnv {
	t.Helper()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	allocs, err := js.KeyValue(t.Context(), subj.AllocationsBucket())
	if err != nil {
		t.Fatal(err)
	}
	matches, err := js.KeyValue(t.Context(), subj.MatchesBucket())
	if err != nil {
		t.Fatal(err)
	}
	e := &promiseEnv{js: js, subj: subj, matches: matches, now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	e.recs = &records{kv: allocs, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: e.clock}
	data, _ := json.Marshal(record{Server: &gs1})
	if _, err := allocs.Put(t.Context(), "r1", data); err != nil {
		t.Fatal(err)
	}
	room := events.Match{MatchID: "r1", Mode: "2v2", Region: "eu", Tier: "gold", AcceptsBackfill: true, Tickets: []events.MatchTicket{
		{TicketID: "ta", Players: []string{"alice"}, Skill: 1600}, {TicketID: "tb", Players: []string{"bob"}, Skill: 1600},
		{TicketID: "tc", Players: []string{"carol"}, Skill: 1700, Team: 1}, {TicketID: "td", Players: []string{"dave"}, Skill: 1700, Team: 1}}}
	data, _ = json.Marshal(room)
	if _, err := matches.Put(t.Context(), "r1", data); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *promiseEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *promiseEnv) wait(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// noLimit is a limit on the players sent to a room (turnover.go) no
// test of promises reaches.
var noLimit = budget{most: 1 << 20}

// fillOf is match id filling room r1 with these players on team 1.
func fillOf(id string, players ...string) events.Match {
	m := events.Match{MatchID: id, Mode: "2v2", Region: "eu", Tier: "gold", Backfill: &events.MatchBackfill{BackfillID: "r1-b1", MatchID: "r1"}}
	for _, p := range players {
		m.Tickets = append(m.Tickets, events.MatchTicket{TicketID: "t-" + p, Players: []string{p}, Team: 1})
	}
	return m
}

// asks is room r1's request Ask for seats, as gs-1 shows it, with the
// players seated there.
func asks(ask int, seats ...int) ShownBackfill {
	return ShownBackfill{Backfill: play.Backfill{MatchID: "r1", Ask: ask, Seats: seats}, Server: gs1}
}

// TestPromisedSeatsAreNotGivenTwice: room r1 asks for one seat on team 1
// and erin is promised it, until her token expires. The room, which
// knows nothing of erin until she joins, then asks for two seats on team
// 1 (carol left too): a fill with two players does not fit (one seat is
// erin's), a fill with one does, and nothing fits after it. A repeat of
// erin's fill keeps its promise, as it was; once the promises have ended
// (their tokens expired, and the margin for stale views and clocks), the
// seats are free again, and their players are remembered as sent.
func TestPromisedSeatsAreNotGivenTwice(t *testing.T) {
	t.Parallel()
	e := newPromiseEnv(t)
	ttl := 10 * time.Minute
	promise := func(m events.Match, seats ...int) (record, error) {
		return e.recs.promise(t.Context(), "r1", m, asks(1, seats...), noLimit, e.clock().Add(ttl))
	}
	erin, err := promise(fillOf("f1", "erin"), 0, 1)
	if err != nil || erin.Server == nil || erin.Server.Name != "gs-1" || erin.Until != e.clock().Add(ttl).UnixMilli() {
		t.Fatalf("erin's fill: %+v %v", erin, err)
	}
	e.wait(time.Minute)
	if _, err := promise(fillOf("f2", "frank", "gina"), 0, 2); !errors.Is(err, errRoomGone) {
		t.Fatalf("two players for the one seat not promised to erin: %v", err)
	}
	if again, err := promise(fillOf("f1", "erin"), 0, 2); err != nil || again.Until != erin.Until {
		t.Fatalf("erin's fill again: %+v %v, want its promise until %d", again, err, erin.Until)
	}
	if _, err := promise(fillOf("f3", "frank"), 0, 2); err != nil {
		t.Fatalf("one player for the seat not promised: %v", err)
	}
	if _, err := promise(fillOf("f4", "gina"), 0, 2); !errors.Is(err, errRoomGone) {
		t.Fatalf("a third player for two seats: %v", err)
	}
	e.wait(ttl - time.Minute + promiseMargin - time.Millisecond)
	if _, err := promise(fillOf("f5", "gina"), 0, 1); !errors.Is(err, errRoomGone) {
		t.Fatalf("a seat promised to erin given within the margin: %v", err)
	}
	e.wait(time.Minute)
	if _, err := promise(fillOf("f6", "gina"), 0, 2); err != nil {
		t.Fatalf("a seat whose promise ended: %v", err)
	}
	room, _, err := e.recs.room(t.Context(), "r1")
	if err != nil {
		t.Fatal(err)
	}
	if got := room.players(); !slices.Equal(got, []string{"frank", "gina", "erin"}) {
		t.Fatalf("players promised, then sent: %v", got)
	}
}

// TestTwoAllocatorsPromiseTheLastSeatOnce: two allocators promise the
// room's one free seat at the same moment, to two fills: one wins (the
// record's compare-and-set), the other's fill does not fit.
func TestTwoAllocatorsPromiseTheLastSeatOnce(t *testing.T) {
	t.Parallel()
	e := newPromiseEnv(t)
	for round := range 5 {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() {
				m := fillOf(fmt.Sprintf("f%d-%d", round, i), fmt.Sprintf("p%d-%d", round, i))
				_, errs[i] = e.recs.promise(t.Context(), "r1", m, asks(1, 0, 1), noLimit, e.clock().Add(time.Minute))
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, errRoomGone):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: the last seat promised %d times: %v", round, won, errs)
		}
		e.wait(time.Minute + promiseMargin) // the seat is free again
	}
}

// TestRequestLeavesOutPromisedSeats: the published request asks for the
// room's free seats less those promised, and lists the room's match's
// players and those promised a seat; a request all of whose seats are
// promised waits for the first promise to end, then is published.
func TestRequestLeavesOutPromisedSeats(t *testing.T) {
	t.Parallel()
	e := newPromiseEnv(t)
	published := testkit.Collect(t, e.js.Conn(), e.subj.AllBackfills())
	src := &showing{reqs: []play.Backfill{{MatchID: "r1", Ask: 2, Seats: []int{0, 2}}}}
	rq := newRequester(&rooms{matches: e.matches, src: src, records: e.recs, turnover: backfillDefaults.Turnover}, events.NewPublisher(e.js, e.subj), backfillDefaults.MinInterval, e.recs.log, e.clock)
	erin, err := e.recs.promise(t.Context(), "r1", fillOf("f1", "erin"), asks(1, 0, 1), noLimit, e.clock().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	rq.poll(t.Context())
	testkit.Eventually(t, 5*time.Second, func() bool { return len(published()) == 1 }, "no request")
	req, err := events.DecodeBackfill(published()[0].Data)
	if err != nil || req.BackfillID != "r1-b2" || req.Ask != 2 || !slices.Equal(req.Seats, []int{0, 1}) ||
		!slices.Equal(req.Players, []string{"alice", "bob", "carol", "dave", "erin"}) {
		t.Fatalf("request %+v %v: want one seat (the other promised to erin) and every player", req, err)
	}

	// Erin joined, but gs-1 does not show her seated; the room asks for
	// the seat dave left. It is promised to erin until her token (and
	// the margin) ends.
	src.set(play.Backfill{MatchID: "r1", Ask: 3, Seats: []int{0, 1}})
	rq.poll(t.Context())
	e.wait(time.Minute + promiseMargin - time.Millisecond)
	rq.poll(t.Context())
	time.Sleep(100 * time.Millisecond)
	if n := len(published()); n != 1 {
		t.Fatalf("%d requests published while every seat is promised", n)
	}
	if ends, due := time.UnixMilli(erin.Until).Add(promiseMargin), rq.due[requestKey{serverOf(gs1), "r1-b3"}]; !due.Equal(ends) {
		t.Fatalf("the request is due %s, want when erin's promise ends (%s)", due, ends)
	}
	e.wait(time.Millisecond)
	rq.poll(t.Context())
	testkit.Eventually(t, 5*time.Second, func() bool { return len(published()) == 2 }, "the request not published once the promise ended")
	if req, err := events.DecodeBackfill(published()[1].Data); err != nil || req.BackfillID != "r1-b3" || !slices.Equal(req.Seats, []int{0, 1}) ||
		!slices.Contains(req.Players, "erin") {
		t.Fatalf("request %+v %v", req, err)
	}
}

// TestRoomRecordStaysWithinItsBucket: a room's record never outgrows the
// allocations bucket's values: the players sent long ago go first, then
// those of the oldest promises, and a promise that would not fit even
// then is refused (its fill requeued), the record as it was.
func TestRoomRecordStaysWithinItsBucket(t *testing.T) {
	t.Parallel()
	e := newPromiseEnv(t)
	long := func(i int) string { return fmt.Sprintf("%064d", i) }
	seats := []int{0, 100}
	refused := false
	for i := range 100 {
		if i%10 == 0 {
			e.wait(time.Hour) // the promises so far end: their players are sent
		}
		_, err := e.recs.promise(t.Context(), "r1", fillOf(fmt.Sprintf("f%d", i), long(i)), asks(1, seats...), noLimit, e.clock().Add(time.Minute))
		if err != nil {
			if !errors.Is(err, errRoomGone) {
				t.Fatal(err)
			}
			refused = true
		}
		data, err := e.recs.kv.Get(t.Context(), "r1")
		if err != nil {
			t.Fatal(err)
		}
		if n := len(data.Value()); n > roomRecordBytes {
			t.Fatalf("room record of %d bytes after %d promises", n, i+1)
		}
	}
	if refused {
		t.Fatal("a promise refused with at most ten live")
	}
	room, _, err := e.recs.room(t.Context(), "r1")
	if err != nil || len(room.Promised) != 10 || !slices.Contains(room.players(), long(99)) || slices.Contains(room.players(), long(0)) {
		t.Fatalf("room record: %d promises, players %d, %v", len(room.Promised), len(room.players()), err)
	}

	// A hundred promises live at once: their players go, then no more fit.
	e.wait(time.Hour)
	kept := 0
	for i := range 100 {
		_, err := e.recs.promise(t.Context(), "r1", fillOf(fmt.Sprintf("g%d", i), long(i)), asks(1, seats...), noLimit, e.clock().Add(time.Minute))
		if err == nil {
			kept++
			continue
		}
		if !errors.Is(err, errRoomGone) {
			t.Fatal(err)
		}
		room, _, rerr := e.recs.room(t.Context(), "r1")
		if rerr != nil || len(room.Promised) != kept {
			t.Fatalf("after a promise refused: %d promises kept, want %d (%v)", len(room.Promised), kept, rerr)
		}
	}
	if kept < 20 || kept == 100 {
		t.Fatalf("%d of 100 promises kept", kept)
	}
}
