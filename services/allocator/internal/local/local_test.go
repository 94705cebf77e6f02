package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
)

// fakeGame answers /status like the game server does.
func fakeGame(t *testing.T, name string, rooms, max *atomic.Int32) Target {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"rooms":%d,"max_rooms":%d}`, rooms.Load(), max.Load())
	}))
	t.Cleanup(hs.Close)
	host, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return Target{Server: allocator.Server{Name: name, Address: host, Port: p}}
}

func TestAllocatePrefersRoomAndSkipsFullAndDown(t *testing.T) {
	t.Parallel()
	var aRooms, aMax, bRooms, bMax atomic.Int32
	aRooms.Store(9)
	aMax.Store(10)
	bRooms.Store(2)
	bMax.Store(10)
	down := Target{Server: allocator.Server{Name: "down", Address: "127.0.0.1", Port: 1}}
	// b is seen by players at another address than the allocator reads
	// its /status from, as in docker-compose.
	gb := fakeGame(t, "b", &bRooms, &bMax)
	gb.StatusAddr = net.JoinHostPort(gb.Address, strconv.Itoa(gb.Port))
	gb.Address, gb.Port = "players.example", 7001
	b := New([]Target{fakeGame(t, "a", &aRooms, &aMax), gb, down})
	b.startGrace = 0 // "down" never answers: down from its first poll
	ctx := context.Background()
	if _, known := b.Capacity("eu"); known {
		t.Fatal("capacity known before any poll")
	}
	b.poll(ctx)
	if c, known := b.Capacity("eu"); c.FreeRooms != 9 || c.TotalRooms != 20 || c.Servers != 2 || c.AllocatedServers != 2 || !known {
		t.Fatalf("capacity %+v (known %v)", c, known)
	}
	s, err := b.Allocate(ctx, events.Match{MatchID: "m1"})
	if err != nil || s.Name != "b" || s.Address != "players.example" || s.Port != 7001 {
		t.Fatalf("first match went to %+v (%v), want b at players.example:7001 (8 free)", s, err)
	}
	if again, _ := b.Allocate(ctx, events.Match{MatchID: "m1"}); again != s {
		t.Fatal("the same match got another server")
	}
	bRooms.Store(10) // b fills up
	b.poll(ctx)
	if s, _ := b.Allocate(ctx, events.Match{MatchID: "m2"}); s.Name != "a" {
		t.Fatalf("m2 went to %s, want a", s.Name)
	}
	aRooms.Store(10)
	b.poll(ctx)
	if _, err := b.Allocate(ctx, events.Match{MatchID: "m3"}); !errors.Is(err, allocator.ErrNoCapacity) {
		t.Fatalf("all full: %v", err)
	}
}

// A game server not listening yet when the allocator first polls it (the
// local stack and compose start them side by side) is not yet down: a
// report of no room, read by the frontends, refused every ticket until
// the next poll. Past its start grace, one that never answered is down.
func TestAServerThatNeverAnsweredIsNotDownAtOnce(t *testing.T) {
	t.Parallel()
	var rooms, maxRooms atomic.Int32
	maxRooms.Store(10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // not listening yet
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	late := Target{Server: allocator.Server{Name: "late", Address: host, Port: p}}
	b := New([]Target{fakeGame(t, "up", &rooms, &maxRooms), late})
	ctx := t.Context()
	b.poll(ctx)
	if c, known := b.Capacity("eu"); known {
		t.Fatalf("capacity %+v reported while a server had not answered yet", c)
	}
	if s, err := b.Allocate(ctx, events.Match{MatchID: "m1"}); err != nil || s.Name != "up" {
		t.Fatalf("m1 went to %+v (%v), want the server known to have room", s, err)
	}
	rooms.Store(10) // full: a server that did not answer is not tried, grace or not
	b.poll(ctx)
	if s, err := b.Allocate(ctx, events.Match{MatchID: "m2"}); !errors.Is(err, allocator.ErrNoCapacity) {
		t.Fatalf("m2 went to %+v (%v), want no capacity", s, err)
	}
	rooms.Store(0)
	b.startGrace = 0 // its grace over: it never answered, and is down
	b.poll(ctx)
	if c, known := b.Capacity("eu"); !known || c.Servers != 1 || c.FreeRooms != 10 {
		t.Fatalf("capacity %+v (known %v), want the one server up, 10 rooms free", c, known)
	}
	rooms.Store(10) // full: the down server is not tried
	b.poll(ctx)
	if s, err := b.Allocate(ctx, events.Match{MatchID: "m3"}); !errors.Is(err, allocator.ErrNoCapacity) {
		t.Fatalf("m3 went to %+v (%v), want no capacity", s, err)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	s, err := Parse("g1=127.0.0.1:7000, 127.0.0.1:7001, g3=localhost:7002@game-3:7000")
	if err != nil || len(s) != 3 || s[0].Name != "g1" || s[1].Name != "local-7001" || s[1].Port != 7001 ||
		s[2].Address != "localhost" || s[2].Port != 7002 || s[2].StatusAddr != "game-3:7000" || s[0].StatusAddr != "" {
		t.Fatalf("%+v %v", s, err)
	}
	for _, bad := range []string{"", "nohost", "h:99999", "h:x", "h:1@nohost"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// TestBackfillsAreShownByTheirServer: each request carries the server
// whose /status lists it (the allocator takes a room's request only from
// the server its record names), at most one per room, and no more than
// the rooms the server says it has open: a server listing requests for
// rooms it does not have costs the allocator nothing. Each carries who
// the server says holds seats, as of the same /status (a player sent to
// fill a seat is seen seated there: their seat's promise is released).
func TestBackfillsAreShownByTheirServer(t *testing.T) {
	t.Parallel()
	seated := []string{"alice", "bob", "erin"}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(play.Status{Rooms: 2, MaxRooms: 4, Backfill: []play.Backfill{
			{MatchID: "r1", Ask: 1, Seats: []int{0, 1}}, {MatchID: "r1", Ask: 9, Seats: []int{2, 2}},
			{MatchID: "r2", Ask: 1, Seats: []int{1, 0}}, {MatchID: "r3", Ask: 1, Seats: []int{1, 0}},
		}, Seated: seated, Open: []string{"r1", "r1", "r2", "r3"}})
	}))
	t.Cleanup(hs.Close)
	host, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	srv := allocator.Server{Name: "g1", Address: host, Port: p}
	b := New([]Target{{Server: srv}})
	b.poll(t.Context())
	got, known := b.Backfills()
	want := []allocator.ShownBackfill{
		{Backfill: play.Backfill{MatchID: "r1", Ask: 1, Seats: []int{0, 1}}, Server: srv, Seated: seated},
		{Backfill: play.Backfill{MatchID: "r2", Ask: 1, Seats: []int{1, 0}}, Server: srv, Seated: seated},
	}
	if !known || !reflect.DeepEqual(got, want) {
		t.Fatalf("Backfills = %+v, %v; want %+v", got, known, want)
	}
	// The rooms it shows open, likewise each once and no more than it
	// says it has: their records are kept while they show.
	open, known := b.Rooms()
	if want := []allocator.ShownRoom{{MatchID: "r1", Server: srv}, {MatchID: "r2", Server: srv}}; !known || !reflect.DeepEqual(open, want) {
		t.Fatalf("Rooms = %+v, %v; want %+v", open, known, want)
	}
}

// statusOf is a game server whose /status answers body.
func statusOf(t *testing.T, body []byte) Target {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }))
	t.Cleanup(hs.Close)
	host, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return Target{Server: allocator.Server{Name: "evil", Address: host, Port: p}}
}

// TestAHostileStatusIsBounded: a game server's /status is its own word,
// Rooms and MaxRooms too. One that says it hosts 2^30 rooms and lists
// 100,000 requests has no more shown than a server may host rooms
// (allocator.MaxRoomsShown), nor more than play.MaxSeated players seated;
// one whose /status is larger than any honest
// one (maxStatusBytes) is not read at all: it counts as down, asking for
// no one.
func TestAHostileStatusIsBounded(t *testing.T) {
	t.Parallel()
	st := play.Status{Rooms: 1 << 30, MaxRooms: 1 << 30}
	for i := range 100_000 {
		st.Backfill = append(st.Backfill, play.Backfill{MatchID: fmt.Sprintf("forged-%d", i), Ask: 1, Seats: []int{1, 1}})
	}
	for i := range 10 * play.MaxSeated {
		st.Seated = append(st.Seated, fmt.Sprintf("p%d", i))
	}
	got := shown(allocator.Server{Name: "evil"}, st)
	if len(got) != allocator.MaxRoomsShown {
		t.Fatalf("a server that says it hosts 2^30 rooms had %d requests shown, want %d", len(got), allocator.MaxRoomsShown)
	}
	if n := len(got[0].Seated); n != play.MaxSeated {
		t.Fatalf("%d players shown seated, want %d", n, play.MaxSeated)
	}
	body, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	b := New([]Target{statusOf(t, body)})
	if _, err := b.status(t.Context(), b.servers[0].Target); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a %d-byte /status: err %v, want it refused as too large", len(body), err)
	}
	b.poll(t.Context())
	if reqs, known := b.Backfills(); !known || len(reqs) != 0 {
		t.Fatalf("Backfills = %d requests, known %v; want none, known", len(reqs), known)
	}
	if c, _ := b.Capacity("eu"); c.Servers != 0 {
		t.Fatalf("capacity %+v: the server counts as up", c)
	}
}

// A server that has not answered yet shows no rooms and no requests; it
// does not hold up the others' for its grace (review R1: the backfills
// and the rooms' records of every server waited 10 s after each start
// while one listed server was dead).
func TestAServerThatNeverAnsweredHidesNoOtherRooms(t *testing.T) {
	t.Parallel()
	body, err := json.Marshal(play.Status{Rooms: 1, MaxRooms: 4,
		Backfill: []play.Backfill{{MatchID: "r1", Ask: 1, Seats: []int{0, 1}}}, Open: []string{"r1"}})
	if err != nil {
		t.Fatal(err)
	}
	dead := Target{Server: allocator.Server{Name: "dead", Address: "127.0.0.1", Port: 1}}
	b := New([]Target{statusOf(t, body), dead})
	b.poll(t.Context())
	if reqs, known := b.Backfills(); !known || len(reqs) != 1 {
		t.Errorf("Backfills = %d requests, known %v; want the live server's one, known", len(reqs), known)
	}
	if rooms, known := b.Rooms(); !known || len(rooms) != 1 {
		t.Errorf("Rooms = %d, known %v; want the live server's one, known", len(rooms), known)
	}
	if c, known := b.Capacity("eu"); known {
		t.Errorf("capacity %+v reported during the dead server's grace", c)
	}
}
