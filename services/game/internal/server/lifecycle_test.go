package server

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk/sdktest"
)

// A process restarted in place (a crashed game container, with Agones'
// sidecar containers) finds every annotation an allocation ever wrote on
// its GameServer: it opens exactly the rooms in the rooms List, stays
// Allocated while they live, and refuses joins to the others.
func TestRestartOpensOnlyLiveRooms(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	first, hs, crash := runOn(t, fake, Config{BestOf: 1, Reuse: true})
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	for _, m := range []string{"m1", "m2", "m3"} {
		allocate(t, fake, m, []string{m + "-a"}, []string{m + "-b"})
	}
	waitFor(t, func() bool { return len(first.openIDs()) == 3 }, "allocated rooms not opened")
	a, b := startGame(t, hs, "m1", "m1-a", "m1-b")
	playOneRound(t, a, b)
	next(t, a, "over")
	waitFor(t, func() bool { r, _ := lists(fake); return slices.Equal(r, []string{"m2", "m3"}) }, "m1 not given back")
	crash()

	second, hs2, _ := runOn(t, fake, Config{BestOf: 1, Reuse: true})
	waitFor(t, func() bool { return len(second.openIDs()) >= 2 }, "live rooms not opened after the restart")
	if ids := second.openIDs(); !slices.Equal(ids, []string{"m2", "m3"}) {
		t.Fatalf("after the restart open rooms %v, want m2 m3 (m1's annotation is stale)", ids)
	}
	if _, res, err := dial(t, hs2, "m1", token(t, "m1", "m1-a", time.Minute)); err == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("a join to the ended m1 after the restart: %v", err)
	}
	x, y := startGame(t, hs2, "m2", "m2-a", "m2-b")
	playOneRound(t, x, y)
	next(t, y, "over")
	waitFor(t, func() bool { r, _ := lists(fake); return slices.Equal(r, []string{"m3"}) }, "m2 not given back")
	if n := countCalls(fake, "ready"); n != 1 || fake.GameServer().Status.State != "Allocated" {
		t.Fatalf("%d ready calls, state %s: a restart with live rooms must stay Allocated", n, fake.GameServer().Status.State)
	}
}

func countCalls(fake *sdktest.Server, call string) int {
	n := 0
	for _, c := range fake.Calls() {
		if c == call {
			n++
		}
	}
	return n
}

// A server reused for longer than EndedMemory forgets its ended rooms;
// their annotations stay on the GameServer. A later allocation must open
// only its own room, not the forgotten ones again.
func TestReuseAfterTheEndedRoomMemory(t *testing.T) {
	t.Parallel()
	s, hs, fake := startAgones(t, Config{BestOf: 1, Reuse: true, EndedMemory: 50 * time.Millisecond})
	playAllocated := func(m string) {
		allocate(t, fake, m, []string{m + "-a"}, []string{m + "-b"})
		a, b := startGame(t, hs, m, m+"-a", m+"-b")
		playOneRound(t, a, b)
		next(t, a, "over")
		waitFor(t, func() bool { r, _ := lists(fake); return len(r) == 0 && len(s.openIDs()) == 0 }, m+" not given back")
	}
	playAllocated("m1")
	time.Sleep(100 * time.Millisecond) // past EndedMemory
	playAllocated("m2")                // its end forgets m1
	s.mu.Lock()
	_, remembered := s.ended["m1"]
	s.mu.Unlock()
	if remembered {
		t.Fatal("m1 still remembered: the test needs it forgotten")
	}
	allocate(t, fake, "m3", []string{"m3-a"}, []string{"m3-b"})
	waitFor(t, func() bool { return len(s.openIDs()) > 0 }, "m3 not opened")
	time.Sleep(50 * time.Millisecond) // the watch's whole update handled
	if ids := s.openIDs(); !slices.Equal(ids, []string{"m3"}) {
		t.Fatalf("open rooms %v, want only m3", ids)
	}
	if _, res, err := dial(t, hs, "m1", token(t, "m1", "m1-a", time.Minute)); err == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("a join to the forgotten m1: %v", err)
	}
}

// FuzzRoomLifecycle plays a sequence of allocations (as the allocator
// asks for them: room in both Lists), room ends, process restarts (in
// place, on the same GameServer) and ended-room memory expiries over the
// fake sidecar, one op per byte. After each op settles: the rooms List
// is exactly the open rooms, the players List exactly their players, no
// List is over its capacity, and no room opened that was not allocated
// and live. With only the seeds (go test) it is the property test; make
// fuzz may run it longer.
func FuzzRoomLifecycle(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 0, 1, 1})
	f.Add([]byte{0, 0, 0, 2, 1, 3, 0, 2, 1, 1})
	f.Add([]byte{0, 1, 3, 0, 3, 0, 2, 2, 1, 0})
	r := rand.New(rand.NewPCG(17, 17))
	for range 4 {
		ops := make([]byte, 24)
		for i := range ops {
			ops[i] = byte(r.IntN(4))
		}
		f.Add(ops)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 40 {
			ops = ops[:40]
		}
		l := &lifecycle{t: t, fake: sdktest.New(t, sdktest.Options{Lists: map[string]int64{agones.ListRooms: 3, agones.ListPlayers: 5}}),
			live: map[string][]string{}, ever: map[string]bool{}}
		l.restart()
		for i, op := range ops {
			l.step(i, op%4)
			l.check(fmt.Sprintf("op %d (%d)", i, op%4))
		}
	})
}

// lifecycle is one run of FuzzRoomLifecycle: the fake, the game server
// process now, and what the test allocated.
type lifecycle struct {
	t     *testing.T
	fake  *sdktest.Server
	s     *Server
	crash func()
	live  map[string][]string // match id -> players, of rooms not ended
	ever  map[string]bool     // every match id allocated
	n     int
}

var lifecyclePlayers = []string{"p0", "p1", "p2", "p3"}

func (l *lifecycle) restart() {
	if l.crash != nil {
		l.crash()
	}
	l.s, _, l.crash = runOn(l.t, l.fake, Config{Reuse: true, EndedMemory: time.Nanosecond, IdleTimeout: time.Hour})
	waitFor(l.t, func() bool { st := l.fake.GameServer().Status.State; return st == "Ready" || st == "Allocated" }, "never started")
}

func (l *lifecycle) step(i int, op byte) {
	switch op {
	case 0, 1: // allocate a match of two players, maybe one of a live room
		l.n++
		id := fmt.Sprintf("m%d", l.n)
		a, b := lifecyclePlayers[(l.n+i)%4], lifecyclePlayers[(l.n+2*i+1)%4]
		if a == b {
			b = lifecyclePlayers[(slices.Index(lifecyclePlayers, a)+1)%4]
		}
		err := l.fake.Allocate(sdktest.RoomAllocation(id, agones.Room{Mode: "1v1", Teams: [][]string{{a}, {b}}}))
		switch {
		case err == nil:
			l.live[id], l.ever[id] = []string{a, b}, true
		case !errors.Is(err, sdktest.ErrUnAllocated): // no room in a List: Agones picks another server
			l.t.Fatalf("allocate: %v", err)
		}
	case 2: // end a live room (as a won game does)
		ids := slices.Sorted(maps.Keys(l.live))
		if len(ids) == 0 {
			return
		}
		id := ids[i%len(ids)]
		waitFor(l.t, func() bool { return slices.Contains(l.s.openIDs(), id) }, id+" never opened")
		l.s.mu.Lock()
		rm := l.s.rooms[id]
		l.s.mu.Unlock()
		rm.send(event{kind: evShutdown})
		delete(l.live, id)
	case 3: // the process dies and restarts in place; EndedMemory (1ns) expires on each end
		l.restart()
	}
}

// check waits until the server has settled, then checks the Lists.
func (l *lifecycle) check(at string) {
	l.t.Helper()
	want := slices.Sorted(maps.Keys(l.live))
	wantPlayers := map[string]bool{}
	for _, ps := range l.live {
		for _, p := range ps {
			wantPlayers[p] = true
		}
	}
	settled := func() bool {
		rooms, players := lists(l.fake)
		return slices.Equal(l.s.openIDs(), want) && slices.Equal(slices.Sorted(slices.Values(rooms)), want) &&
			slices.Equal(slices.Sorted(slices.Values(players)), slices.Sorted(maps.Keys(wantPlayers)))
	}
	deadline := time.Now().Add(5 * time.Second)
	for !settled() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	rooms, players := lists(l.fake)
	if !settled() {
		l.t.Fatalf("%s: open %v, rooms List %v, players List %v; want rooms %v, players %v",
			at, l.s.openIDs(), rooms, players, want, slices.Sorted(maps.Keys(wantPlayers)))
	}
	st := l.fake.GameServer().Status
	for name, list := range st.Lists {
		if len(list.Values) > int(list.Capacity) {
			l.t.Fatalf("%s: list %s holds %d, capacity %d", at, name, len(list.Values), list.Capacity)
		}
	}
	for _, id := range l.s.openIDs() {
		if !l.ever[id] {
			l.t.Fatalf("%s: room %s open, never allocated", at, id)
		}
	}
}
