package allocator_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/local"
)

// gameServer is a game server's /status, with the requests its rooms make
// as the test sets them.
type gameServer struct {
	mu       sync.Mutex
	backfill []play.Backfill
	full     bool // every room taken: no match is allocated here
}

func (g *gameServer) ask(b ...play.Backfill) {
	g.mu.Lock()
	g.backfill = b
	g.mu.Unlock()
}

func (g *gameServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := play.Status{Rooms: 1, MaxRooms: 4, Backfill: g.backfill}
	if g.full {
		st.Rooms = st.MaxRooms
	}
	_ = json.NewEncoder(w).Encode(st)
}

// backfillEnv is an allocator on the local backend over one game server
// (gs), with its poll and its backfill requester running, and the full
// servers others, listed before it.
type backfillEnv struct {
	*env
	gs      *gameServer
	srv     *httptest.Server
	backend *local.Backend
	port    int
	others  []*gameServer
}

// startBackfill starts the allocator; others names full game servers
// listed before gs-1 (a match is allocated on gs-1, but a backend that
// looks at its servers in order sees theirs first).
func startBackfill(t *testing.T, others ...string) *backfillEnv {
	t.Helper()
	var targets []local.Target
	var full []*gameServer
	for _, name := range others {
		g := &gameServer{full: true}
		s := httptest.NewServer(g)
		t.Cleanup(s.Close)
		u, _ := url.Parse(s.URL)
		p, _ := strconv.Atoi(u.Port())
		targets = append(targets, local.Target{Server: allocator.Server{Name: name, Address: "127.0.0.1", Port: p}})
		full = append(full, g)
	}
	gs := &gameServer{}
	srv := httptest.NewServer(gs)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	port, _ := strconv.Atoi(u.Port())
	b := local.New(append(targets, local.Target{Server: allocator.Server{Name: "gs-1", Address: "127.0.0.1", Port: port}}))
	testkit.Run(t, func(ctx context.Context) error { return b.Run(ctx, 20*time.Millisecond) })
	// Polled once before any match: a match goes to gs-1, not to a
	// server whose rooms are not known yet.
	testkit.Eventually(t, 5*time.Second, func() bool { _, known := b.Capacity("eu"); return known }, "game servers never polled")
	e := start(t, b, allocator.Config{RetryDeadline: 500 * time.Millisecond})
	testkit.Run(t, func(ctx context.Context) error {
		return allocator.RequestBackfills(ctx, e.js, e.subj, b, allocator.BackfillConfig{Every: 20 * time.Millisecond, MinInterval: 50 * time.Millisecond}, testLog())
	})
	return &backfillEnv{env: e, gs: gs, srv: srv, backend: b, port: port, others: full}
}

// room is a running 2v2 room: its match (r1, alice and bob against
// carol and dave, in a mode that accepts backfill) recorded by the
// matcher and allocated on gs-1, every player assigned.
func (e *backfillEnv) room(t *testing.T) events.Match {
	t.Helper()
	return e.open(t, teamMatch("r1", "2v2", false, []string{"alice", "bob"}, []string{"carol", "dave"}))
}

// open runs match m's room as room does r1's: m accepts backfill, and
// its players, all assigned, hold tokens that say so.
func (e *backfillEnv) open(t *testing.T, m events.Match) events.Match {
	t.Helper()
	m.AcceptsBackfill = true
	for i := range m.Tickets {
		m.Tickets[i].Skill = 1600 + 20*i // mean 1630
	}
	m.Tickets[0].Attributes = &events.Attributes{Strings: map[string]string{"platform": "pc"}}
	data, _ := json.Marshal(m)
	kv, err := e.js.KeyValue(t.Context(), e.subj.MatchesBucket())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), m.MatchID, data); err != nil {
		t.Fatal(err)
	}
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	if err := e.pub.Match(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == len(m.Players()) }, "the room's match was not assigned")
	for _, msg := range res() {
		r, _ := events.DecodeResult(msg.Data)
		g, err := joinKeys.Verify(r.Assignment.JoinToken, time.Now())
		if err != nil || !g.Seat.AcceptsBackfill || r.Assignment.Server != "gs-1" {
			t.Fatalf("%s's token in a room that accepts backfill: %+v %v", r.PlayerID, g, err)
		}
	}
	return m
}

// fill is the match the matcher forms to fill request id of room r1:
// erin on team 1.
func fill(id string) events.Match {
	m := teamMatch("f1", "2v2", false, []string{"erin"})
	m.Tickets[0].Team = 1
	m.Tickets[0].Skill = 1640
	m.Tickets[0].CreatedAt = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	m.Backfill = &events.MatchBackfill{BackfillID: id, MatchID: "r1"}
	return m
}

// TestBackfillIsRequestedAndItsPlayersJoinTheRoom: dave leaves room r1
// for good and the room asks for a player on team 1; the allocator
// publishes the request once, for the room's shard, with the room's mean
// skill and first ticket's attributes; the match that fills it is given
// the room's server, and erin a join token for the room, on team 1 of two
// teams of two, in a room that accepts backfill.
func TestBackfillIsRequestedAndItsPlayersJoinTheRoom(t *testing.T) {
	t.Parallel()
	e := startBackfill(t)
	requests := testkit.Collect(t, e.nc, e.subj.AllBackfills())
	e.room(t)
	e.gs.ask(play.Backfill{MatchID: "r1", Ask: 1, Seats: []int{0, 1}})
	testkit.Eventually(t, 10*time.Second, func() bool { return len(requests()) >= 1 }, "no backfill request")
	time.Sleep(200 * time.Millisecond) // more polls: still one request
	if n := testkit.StreamMsgs(t, e.js, e.subj.BackfillsStream()); n != 1 {
		t.Fatalf("%d requests stored for one room's one request", n)
	}
	msg := requests()[0]
	req, err := events.DecodeBackfill(msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != e.subj.Backfill("eu", "gold") || req.BackfillID != play.BackfillID("r1", 1) || req.MatchID != "r1" || req.Ask != 1 ||
		req.Mode != "2v2" || req.Skill != 1630 || len(req.Seats) != 2 || req.Seats[1] != 1 ||
		strings.Join(req.Players, ",") != "alice,bob,carol,dave" ||
		req.Attributes == nil || req.Attributes.Strings["platform"] != "pc" {
		t.Fatalf("request on %s: %+v", msg.Subject, req)
	}

	res := testkit.Collect(t, e.nc, e.subj.Result("erin"))
	if err := e.pub.Match(t.Context(), fill(req.BackfillID)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == 1 }, "erin not assigned")
	r, _ := events.DecodeResult(res()[0].Data)
	a := r.Assignment
	if r.Status != events.StatusAssigned || a == nil || a.Server != "gs-1" || a.Port != e.port || a.Room != "r1" || r.MatchID != "f1" {
		t.Fatalf("erin told %+v (%+v)", r, a)
	}
	g, err := joinKeys.Verify(a.JoinToken, time.Now())
	want := jointoken.Seat{Team: 1, Teams: 2, TeamSize: 2, AcceptsBackfill: true}
	if err != nil || g.MatchID != "r1" || g.PlayerID != "erin" || g.Seat != want {
		t.Fatalf("erin's token: %+v %v, want room r1 and seat %+v", g, err, want)
	}
	if base, j, err := play.ParseURL(a.URL); err != nil || j.MatchID != "r1" || j.Token != a.JoinToken || !strings.HasSuffix(base, ":"+strconv.Itoa(e.port)) {
		t.Fatalf("erin's play URL %q", a.URL)
	}
}

// TestBackfillOfAGoneRoomRequeues: the room ended (it asks for no one),
// its game server is gone (it answers no more), the room has no free
// seat on the team the match fills, or it asks again under a newer Ask
// (the request this match fills may have been filled already): the match's tickets are
// queued again with their wait, their claims released, and no one is
// sent to the room; its record says failed, so a repeat assigns no one.
func TestBackfillOfAGoneRoomRequeues(t *testing.T) {
	t.Parallel()
	for name, asks := range map[string][]play.Backfill{
		"the room ended":         nil,
		"no seat on the team":    {{MatchID: "r1", Ask: 1, Seats: []int{1, 0}}},
		"the room asks again":    {{MatchID: "r1", Ask: 2, Seats: []int{0, 1}}},
		"asks for another room":  {{MatchID: "r2", Ask: 1, Seats: []int{0, 1}}},
		"no record of the room ": {{MatchID: "r1", Ask: 1, Seats: []int{0, 1}}},
		"the server is gone":     {{MatchID: "r1", Ask: 1, Seats: []int{0, 1}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := startBackfill(t)
			if !strings.HasPrefix(name, "no record") {
				e.room(t)
			}
			requests := testkit.Collect(t, e.nc, e.subj.AllBackfills())
			e.gs.ask(asks...)
			if name == "the server is gone" {
				// Seen asking, then gone.
				testkit.Eventually(t, 5*time.Second, func() bool { return len(requests()) == 1 }, "the room's request was never seen")
				e.srv.CloseClientConnections()
				e.srv.Close()
			}
			time.Sleep(100 * time.Millisecond) // polled
			tickets := testkit.Collect(t, e.nc, e.subj.AllTickets())
			res := testkit.Collect(t, e.nc, e.subj.Result("erin"))
			claims, err := events.NewClaims(t.Context(), e.js, e.subj)
			if err != nil {
				t.Fatal(err)
			}
			m := fill(play.BackfillID("r1", 1))
			if lost, err := claims.ClaimAll(t.Context(), m.ClaimKeys(), events.MatchOwner(m.MatchID)); err != nil || len(lost) != 0 {
				t.Fatalf("claim: %v %v", lost, err)
			}
			if err := e.pub.Match(t.Context(), m); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, 10*time.Second, func() bool { return len(tickets()) == 1 && len(res()) == 1 }, "erin not requeued")
			// Delivered again (as a new message: the first is acked), it
			// assigns no one either, and erin's ticket is stored once.
			data, _ := json.Marshal(m)
			if _, err := e.js.Publish(t.Context(), e.subj.Allocation("eu"), data); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, 10*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.AllocationsStream()) == 0 }, "second delivery not handled")
			time.Sleep(200 * time.Millisecond)
			if n := testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()); n != 1 {
				t.Fatalf("erin's ticket stored %d times", n)
			}
			tk, err := events.DecodeTicket(tickets()[0].Data)
			if err != nil || tk.TicketID != "t-erin" || tk.Skill != 1640 || !tk.CreatedAt.Equal(m.Tickets[0].CreatedAt) || tk.Mode != "2v2" {
				t.Fatalf("requeued %s: %v", tickets()[0].Data, err)
			}
			for _, msg := range res() {
				if r, _ := events.DecodeResult(msg.Data); r.Status != events.StatusQueued {
					t.Fatalf("erin told %+v", r)
				}
			}
			if owner, _ := claims.Owner(t.Context(), "t-erin"); owner != "" {
				t.Fatalf("erin's claim kept by %q", owner)
			}
		})
	}
}

// TestBackfillSeatIsPromisedOnce: room r1 asks (ask 1) for a player on
// team 1 and erin is sent. Before she joins, carol leaves too: the room,
// which knows nothing of erin's token, asks (ask 2) for two players on
// team 1. That request is published for the one seat not promised to
// erin, and lists her among the room's players; a fill of two players
// for it is requeued (one seat is erin's), a fill of one is sent. Two
// valid join tokens for the two seats, each expiring with its promise.
func TestBackfillSeatIsPromisedOnce(t *testing.T) {
	t.Parallel()
	e := startBackfill(t)
	e.room(t)
	requests := testkit.Collect(t, e.nc, e.subj.AllBackfills())
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	e.gs.ask(play.Backfill{MatchID: "r1", Ask: 1, Seats: []int{0, 1}})
	testkit.Eventually(t, 10*time.Second, func() bool { return len(requests()) == 1 }, "no request for ask 1")
	if err := e.pub.Match(t.Context(), fill(play.BackfillID("r1", 1))); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == 1 }, "erin not assigned")

	e.gs.ask(play.Backfill{MatchID: "r1", Ask: 2, Seats: []int{0, 2}})
	testkit.Eventually(t, 10*time.Second, func() bool { return len(requests()) == 2 }, "no request for ask 2")
	req, err := events.DecodeBackfill(requests()[1].Data)
	if err != nil || req.Ask != 2 || req.Seats[1] != 1 || !slices.Contains(req.Players, "erin") {
		t.Fatalf("ask 2 published as %+v (%v), want one seat on team 1, erin among the players", req, err)
	}
	sent := func(id string, players ...string) {
		t.Helper()
		m := teamMatch(id, "2v2", false, players)
		for i := range m.Tickets {
			m.Tickets[i].Team = 1
			m.Tickets[i].Skill = 1640
			m.Tickets[i].CreatedAt = time.Now().UTC()
		}
		m.Backfill = &events.MatchBackfill{BackfillID: play.BackfillID("r1", 2), MatchID: "r1"}
		if err := e.pub.Match(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	sent("f2", "frank", "gina")
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == 3 }, "frank and gina not told")
	sent("f3", "frank")
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == 4 }, "frank not told")
	kv, err := e.js.KeyValue(t.Context(), e.subj.AllocationsBucket())
	if err != nil {
		t.Fatal(err)
	}
	until := map[string]time.Time{}
	for _, id := range []string{"f1", "f3"} {
		en, err := kv.Get(t.Context(), id)
		var rec struct{ Until int64 }
		if err != nil || json.Unmarshal(en.Value(), &rec) != nil {
			t.Fatalf("record of %s: %v", id, err)
		}
		until[id] = time.UnixMilli(rec.Until)
	}
	var valid []string
	for _, msg := range res() {
		r, _ := events.DecodeResult(msg.Data)
		switch r.Status {
		case events.StatusAssigned:
			g, err := joinKeys.Verify(r.Assignment.JoinToken, time.Now())
			if err != nil || g.MatchID != "r1" || g.Seat.Team != 1 {
				t.Fatalf("%s's token: %+v %v", r.PlayerID, g, err)
			}
			if !g.Expires.Equal(until[r.MatchID].Truncate(time.Second)) {
				t.Errorf("%s's token expires %s, its promise at %s", r.PlayerID, g.Expires, until[r.MatchID])
			}
			valid = append(valid, r.PlayerID+"/"+r.MatchID)
		case events.StatusQueued:
			if r.TicketID != "t-frank" && r.TicketID != "t-gina" {
				t.Fatalf("%s requeued", r.PlayerID)
			}
		default:
			t.Fatalf("result %+v", r)
		}
	}
	slices.Sort(valid)
	if strings.Join(valid, " ") != "erin/f1 frank/f3" {
		t.Fatalf("valid tokens for the two free seats of team 1: %v", valid)
	}
}

func testLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
