package allocator

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// seatedEnv is room r1 (alice and bob against carol and dave, on gs-1)
// with a requester over what gs-1 shows (src), and fill, which promises
// a match the seats of the request the room makes now, as
// assigner.roomServer does.
type seatedEnv struct {
	*promiseEnv
	src       *showing
	rq        *requester
	published func() []*nats.Msg
	fill      func(m events.Match) error
}

func newSeatedEnv(t *testing.T) *seatedEnv {
	t.Helper()
	e := &seatedEnv{promiseEnv: newPromiseEnv(t), src: &showing{}}
	e.published = testkit.Collect(t, e.js.Conn(), e.subj.AllBackfills())
	rs := &rooms{matches: e.matches, src: e.src, records: e.recs, turnover: backfillDefaults.Turnover}
	e.rq = newRequester(rs, events.NewPublisher(e.js, e.subj), backfillDefaults.MinInterval, e.recs.log, e.clock)
	e.fill = func(m events.Match) error {
		b, limit, err := rs.asking(t.Context(), "r1")
		if err == nil {
			_, err = e.recs.promise(t.Context(), "r1", m, b, limit, e.clock().Add(10*time.Minute))
		}
		return err
	}
	return e
}

// request is the n-th request published (from 1), once it is.
func (e *seatedEnv) request(t *testing.T, n int) events.Backfill {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, func() bool { return len(e.published()) >= n }, "request not published")
	req, err := events.DecodeBackfill(e.published()[n-1].Data)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestASeatedFillReleasesItsSeat: dave leaves room r1 (2v2), which asks
// for his seat; erin is sent to it, promised it for her token's ten
// minutes, and joins: gs-1 shows her seated, and the room, full, asks
// for no one. Then carol leaves: the room asks for her seat, on erin's
// team, and the request is published at once, erin's seat released,
// not once her promise ends; frank is promised carol's seat.
func TestASeatedFillReleasesItsSeat(t *testing.T) {
	t.Parallel()
	e := newSeatedEnv(t)
	e.src.set(play.Backfill{MatchID: "r1", Ask: 1, Seats: []int{0, 1}})
	e.src.seat("alice", "bob", "carol")
	e.rq.poll(t.Context())
	if req := e.request(t, 1); req.BackfillID != "r1-b1" || !slices.Equal(req.Seats, []int{0, 1}) {
		t.Fatalf("dave's seat: %+v", req)
	}
	if err := e.fill(fillOf("f1", "erin")); err != nil {
		t.Fatalf("erin promised dave's seat: %v", err)
	}

	// Erin joins: the room asks for no one (Ask 2), then carol leaves.
	e.src.set()
	e.src.seat("alice", "bob", "carol", "erin")
	e.rq.poll(t.Context())
	e.wait(backfillDefaults.MinInterval)
	e.src.set(play.Backfill{MatchID: "r1", Ask: 3, Seats: []int{0, 1}})
	e.src.seat("alice", "bob", "erin")
	e.rq.poll(t.Context())
	req := e.request(t, 2)
	if req.BackfillID != "r1-b3" || !slices.Equal(req.Seats, []int{0, 1}) || !slices.Contains(req.Players, "erin") {
		t.Fatalf("carol's seat: %+v, want it asked for at once (erin holds hers)", req)
	}
	if err := e.fill(fillOf("f2", "frank")); err != nil {
		t.Fatalf("frank promised carol's seat: %v", err)
	}
}

// TestAnUnseatedFillHoldsItsSeat: frank, promised carol's seat at the
// room's request 3, has not joined: the room, which knows nothing of
// him, asks for his seat again (a re-ask, 4), and nobody else is sent
// to it while his promise lasts. Nor when gs-1 shows him seated with
// the request he was promised for still (under Agones the players List
// may change before the request his join makes is written): that
// request counts his seat free.
func TestAnUnseatedFillHoldsItsSeat(t *testing.T) {
	t.Parallel()
	e := newSeatedEnv(t)
	e.src.set(play.Backfill{MatchID: "r1", Ask: 3, Seats: []int{0, 1}})
	e.src.seat("alice", "bob", "erin")
	if err := e.fill(fillOf("f2", "frank")); err != nil {
		t.Fatal(err)
	}
	e.src.seat("alice", "bob", "erin", "frank")
	if err := e.fill(fillOf("f3", "gina")); !errors.Is(err, errRoomGone) {
		t.Fatalf("gina promised frank's seat, frank seated as the request he filled shows: %v", err)
	}

	e.src.set(play.Backfill{MatchID: "r1", Ask: 4, Seats: []int{0, 1}})
	e.src.seat("alice", "bob", "erin")
	e.rq.poll(t.Context())
	time.Sleep(100 * time.Millisecond)
	if n := len(e.published()); n != 0 {
		t.Fatalf("%d requests published for the seat promised to frank", n)
	}
	if err := e.fill(fillOf("f3", "gina")); !errors.Is(err, errRoomGone) {
		t.Fatalf("gina promised frank's seat before he joined: %v", err)
	}
	// Looked at again within the interval: frank may be seen seated.
	if due := e.rq.due[requestKey{serverOf(gs1), "r1-b4"}]; !due.Equal(e.clock().Add(backfillDefaults.MinInterval)) {
		t.Fatalf("the request is due at %s, want an interval from now", due)
	}
}

// TestAFillSeatedBeforeItsPromiseHoldsItsSeat: hank, promised a seat of
// room r1, is on gs-1 already (seated in another of its rooms: the
// players List is the server's), so his being seated there says
// nothing of r1: his seat is held until his promise ends.
func TestAFillSeatedBeforeItsPromiseHoldsItsSeat(t *testing.T) {
	t.Parallel()
	e := newSeatedEnv(t)
	b := asks(1, 0, 1)
	b.Seated = []string{"alice", "bob", "carol", "hank"}
	if _, err := e.recs.promise(t.Context(), "r1", fillOf("f1", "hank"), b, noLimit, e.clock().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	later := asks(5, 0, 1)
	later.Seated = b.Seated
	if _, err := e.recs.promise(t.Context(), "r1", fillOf("f2", "ivy"), later, noLimit, e.clock().Add(time.Minute)); !errors.Is(err, errRoomGone) {
		t.Fatalf("ivy promised hank's seat: %v", err)
	}
	e.wait(time.Minute + promiseMargin)
	if _, err := e.recs.promise(t.Context(), "r1", fillOf("f2", "ivy"), later, noLimit, e.clock().Add(time.Minute)); err != nil {
		t.Fatalf("ivy once hank's promise ended: %v", err)
	}
}
