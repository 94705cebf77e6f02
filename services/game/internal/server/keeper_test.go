package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk/sdktest"
)

// faulty is a sidecar client that hiccups when a test says so: the next
// fails[kind] calls of a kind ("gameserver", "ready", "shutdown",
// "allocate", "remove", "add", "annotate") fail, and hook, if set, runs
// before every call with its name ("remove rooms m1", "ready",
// "annotate <key> <value>", ...), so that a test can make Agones act at
// one exact moment. Calls it does not name go to the sidecar as they
// are.
type faulty struct {
	*sdk.Client
	mu    sync.Mutex
	fails map[string]int
	hook  func(call string)
}

var _ SDK = (*faulty)(nil)

func newFaulty(c *sdk.Client) *faulty { return &faulty{Client: c, fails: map[string]int{}} }

// failNext makes the next n calls of kind fail.
func (f *faulty) failNext(kind string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails[kind] = n
}

func (f *faulty) failing(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fails[kind]
}

func (f *faulty) setHook(h func(call string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

func (f *faulty) call(kind, call string) error {
	f.mu.Lock()
	hook, fail := f.hook, f.fails[kind] > 0
	if fail {
		f.fails[kind]--
	}
	f.mu.Unlock()
	if hook != nil {
		hook(call)
	}
	if fail {
		return fmt.Errorf("injected failure: %s", call)
	}
	return nil
}

func (f *faulty) GameServer(ctx context.Context) (sdk.GameServer, error) {
	if err := f.call("gameserver", "gameserver"); err != nil {
		return sdk.GameServer{}, err
	}
	return f.Client.GameServer(ctx)
}

func (f *faulty) Ready(ctx context.Context) error {
	if err := f.call("ready", "ready"); err != nil {
		return err
	}
	return f.Client.Ready(ctx)
}

func (f *faulty) Shutdown(ctx context.Context) error {
	if err := f.call("shutdown", "shutdown"); err != nil {
		return err
	}
	return f.Client.Shutdown(ctx)
}

func (f *faulty) Allocate(ctx context.Context) error {
	if err := f.call("allocate", "allocate"); err != nil {
		return err
	}
	return f.Client.Allocate(ctx)
}

func (f *faulty) RemoveListValue(ctx context.Context, name, value string) (sdk.List, error) {
	if err := f.call("remove", "remove "+name+" "+value); err != nil {
		return sdk.List{}, err
	}
	return f.Client.RemoveListValue(ctx, name, value)
}

func (f *faulty) AddListValue(ctx context.Context, name, value string) (sdk.List, error) {
	if err := f.call("add", "add "+name+" "+value); err != nil {
		return sdk.List{}, err
	}
	return f.Client.AddListValue(ctx, name, value)
}

func (f *faulty) SetAnnotation(ctx context.Context, key, value string) error {
	if err := f.call("annotate", "annotate "+key+" "+value); err != nil {
		return err
	}
	return f.Client.SetAnnotation(ctx, key, value)
}

// startFaulty runs a game server whose sidecar client is faulty, once
// Ready; play plays a game of one round in an allocated room, with
// before (if not nil) run once both players are in.
func startFaulty(t *testing.T, cfg Config) (s *Server, f *faulty, fake *sdktest.Server, play func(match, p1, p2 string, before func())) {
	t.Helper()
	fake = newFake(t)
	s, hs, _ := runOnSDK(t, fake, cfg, func(c *sdk.Client) SDK { f = newFaulty(c); return f })
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	play = func(match, p1, p2 string, before func()) {
		t.Helper()
		a, b := startGame(t, hs, match, p1, p2)
		if before != nil {
			before()
		}
		playOneRound(t, a, b)
		next(t, a, "over")
	}
	return s, f, fake, play
}

// allocateFrom is allocate for a hook, which runs outside the test's
// goroutine: it reports a failure without stopping the test there.
func allocateFrom(t *testing.T, fake *sdktest.Server, match string, teams ...[]string) {
	if err := fake.Allocate(sdktest.RoomAllocation(match, agones.Room{Mode: "test", Teams: teams})); err != nil {
		t.Errorf("allocate %s: %v", match, err)
	}
}

// readyAgain waits until the server is Ready with empty Lists after its
// rooms, and says how often it was made Ready in all.
func readyAgain(t *testing.T, fake *sdktest.Server) int {
	t.Helper()
	waitFor(t, func() bool {
		r, p := lists(fake)
		return fake.GameServer().Status.State == "Ready" && len(r) == 0 && len(p) == 0
	}, "not Ready again with empty Lists")
	return countCalls(fake, "ready")
}

// A give-back the sidecar keeps refusing past the retries of one call is
// tried again until it succeeds, and the server goes Ready only then:
// before, the ended room's id and players stayed in the Lists for good.
func TestFailedGiveBackIsTriedAgain(t *testing.T) {
	t.Parallel()
	_, f, fake, play := startFaulty(t, Config{BestOf: 1, Reuse: true})
	allocate(t, fake, "m1", []string{"a"}, []string{"b"})
	f.failNext("remove", 12)
	play("m1", "a", "b", nil)
	readyAgain(t, fake)
	if n := f.failing("remove"); n != 0 {
		t.Fatalf("%d injected failures left: the test did not exercise them", n)
	}
}

// Ready after the last room, refused by the sidecar more often than one
// call's retries, is tried again: before, one refusal left an empty
// server Allocated, where no allocation looks for it.
func TestFailedReadyIsTriedAgain(t *testing.T) {
	t.Parallel()
	_, f, fake, play := startFaulty(t, Config{BestOf: 1, Reuse: true})
	allocate(t, fake, "m1", []string{"a"}, []string{"b"})
	f.failNext("ready", 6)
	play("m1", "a", "b", nil)
	readyAgain(t, fake)
}

// While the GameServer cannot be read, the server does not go Ready
// blind: an allocation may have landed.
func TestNoReadyWithoutReadingTheGameServer(t *testing.T) {
	t.Parallel()
	_, f, fake, play := startFaulty(t, Config{BestOf: 1, Reuse: true})
	allocate(t, fake, "m1", []string{"a"}, []string{"b"})
	var blind bool
	var mu sync.Mutex
	f.setHook(func(call string) {
		if call == "ready" && f.failing("gameserver") > 0 {
			mu.Lock()
			blind = true
			mu.Unlock()
		}
	})
	// Once both have joined (a join may read the GameServer): the reads
	// after the game fail.
	play("m1", "a", "b", func() { f.failNext("gameserver", 3) })
	readyAgain(t, fake)
	mu.Lock()
	defer mu.Unlock()
	if blind {
		t.Fatal("Ready while the GameServer could not be read")
	}
	if n := f.failing("gameserver"); n != 0 {
		t.Fatalf("%d injected failures left: the test did not exercise them", n)
	}
}

// An allocation whose room opens (from the watch) just as the last room
// is given back: the server stays Allocated with it, where before it
// went Ready with a game running, which scale-down may take.
func TestNoReadyWithARoomOpenedMeanwhile(t *testing.T) {
	t.Parallel()
	s, f, fake, play := startFaulty(t, Config{BestOf: 1, Reuse: true})
	allocate(t, fake, "m1", []string{"a"}, []string{"b"})
	var removed, allocated, readyWithRoom bool
	var mu sync.Mutex
	f.setHook(func(call string) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case call == "remove rooms m1":
			removed = true
		case call == "gameserver" && removed && !allocated:
			// The first read after m1 left the List.
			allocated = true
			allocateFrom(t, fake, "m2", []string{"c"}, []string{"d"})
			for deadline := time.Now().Add(5 * time.Second); !slices.Contains(s.openIDs(), "m2"); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Error("m2 not opened by the watch")
					return
				}
			}
		case call == "ready" && s.Rooms() > 0:
			readyWithRoom = true
		}
	})
	play("m1", "a", "b", nil)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return allocated }, "m2 never allocated")
	play("m2", "c", "d", nil)
	if n := readyAgain(t, fake); n != 2 {
		t.Errorf("%d ready calls, want 2: at start and after m2", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if readyWithRoom {
		t.Fatal("Ready with m2 open")
	}
}

// An allocation that lands while the server goes Ready leaves it Ready
// with a live room: it is marked Allocated again.
func TestReadyRacedByAnAllocationIsAllocatedAgain(t *testing.T) {
	t.Parallel()
	s, f, fake, play := startFaulty(t, Config{BestOf: 1, Reuse: true})
	allocate(t, fake, "m1", []string{"a"}, []string{"b"})
	var once sync.Once
	f.setHook(func(call string) {
		if call == "ready" {
			once.Do(func() { allocateFrom(t, fake, "m2", []string{"c"}, []string{"d"}) })
		}
	})
	play("m1", "a", "b", nil)
	waitFor(t, func() bool {
		return fake.GameServer().Status.State == "Allocated" && slices.Equal(s.openIDs(), []string{"m2"})
	}, "a Ready server with a live room not Allocated again")
}

// A player seated by an allocation while the last room seating them is
// being given back stays on the players List: Agones dropped the
// allocation's copy (the List holds each value once), so the give-back
// removed the only one, and it is put back.
func TestPlayerSeatedDuringTheGiveBackStaysListed(t *testing.T) {
	t.Parallel()
	_, f, fake, play := startFaulty(t, Config{BestOf: 1, Reuse: true})
	allocate(t, fake, "m1", []string{"a"}, []string{"b"})
	var once sync.Once
	f.setHook(func(call string) {
		if call == "remove players b" {
			once.Do(func() { allocateFrom(t, fake, "m2", []string{"b"}, []string{"c"}) })
		}
	})
	play("m1", "a", "b", nil)
	waitFor(t, func() bool {
		r, p := lists(fake)
		return slices.Equal(r, []string{"m2"}) && slices.Equal(slices.Sorted(slices.Values(p)), []string{"b", "c"})
	}, "b, seated in m2, not on the players List")
	play("m2", "b", "c", nil)
	readyAgain(t, fake)
}

// Players no live room seats, left on the players List by a process
// that died before its give-back succeeded, are removed by the next
// process on the same GameServer, and their seats are free again.
func TestRestartFinishesAGiveBack(t *testing.T) {
	t.Parallel()
	fake, client := readyFake(t)
	allocate(t, fake, "m1", []string{"a"}, []string{"b"})
	if _, err := client.RemoveListValue(t.Context(), agones.ListRooms, "m1"); err != nil {
		t.Fatal(err) // m1 given back, a and b not: the process died
	}
	s, _, _ := runOn(t, fake, Config{Reuse: true})
	waitFor(t, func() bool { _, p := lists(fake); return len(p) == 0 }, "players of no live room left on the List")
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "not Ready")
	if ids := s.openIDs(); len(ids) != 0 {
		t.Fatalf("open rooms %v", ids)
	}
}
