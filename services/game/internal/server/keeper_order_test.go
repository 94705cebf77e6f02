package server

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// A player admitted to a room while the keeper writes the room's request
// is added to the players List only once a request that counts their
// seat taken is written ("" here: the room is full again), even when
// that write fails a few times first. Before, the pass that was writing
// the older request added them beside it: the allocator, seeing them
// listed beside a request (of a higher Ask than its promise's) that
// counts their seat free, released their promise and could promise the
// seat again.
func TestAgonesBackfillRequestBeforeAddition(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	var f *faulty
	s, hs, _ := runOnSDK(t, fake, Config{BestOf: 7, ReconnectGrace: 100 * time.Millisecond, IdleTimeout: time.Hour, Reuse: true},
		func(c *sdk.Client) SDK { f = newFaulty(c); return f })
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	conns := startBackfillRoom(t, hs, fake, "m1", []string{"a1", "a2"}, []string{"b1", "b2"})

	asking := "annotate " + agones.BackfillKey("m1") + " " + `{"match_id":"m1","ask":1,"seats":[0,1]}`
	writing, admitted := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var shown []string // m1's request on the GameServer as b3 is added
	f.setHook(func(call string) {
		switch {
		case call == asking:
			once.Do(func() { close(writing); <-admitted })
		case strings.HasPrefix(call, "add "+agones.ListPlayers+" b3"):
			mu.Lock()
			defer mu.Unlock()
			shown = append(shown, fake.GameServer().ObjectMeta.Annotations[agones.BackfillAnnotation("m1")])
		}
	})
	conns["b2"].Close() // gone for good after the grace: m1 asks
	select {
	case <-writing:
	case <-time.After(5 * time.Second):
		t.Fatal("m1's request never written")
	}
	// b3 takes b2's seat while the keeper writes the request for it.
	next(t, joinBackfill(t, hs, "m1", "b3", bfSeat(1, 2, 2)), "welcome")
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		_, asks := s.requests["m1"]
		return !asks
	}, "b3's admission never handed to the server")
	f.failNext("annotate", 3)
	close(admitted)

	sortedPlayers(t, fake, "a1", "a2", "b1", "b3")
	backfillAnnotation(t, fake, "m1", "")
	mu.Lock()
	defer mu.Unlock()
	for _, v := range shown {
		if v != "" {
			t.Fatalf("b3 added to the players List beside request %s, which counts their seat free", v)
		}
	}
	if len(shown) == 0 {
		t.Fatal("b3 never added by the keeper")
	}
	if n := f.failing("annotate"); n != 0 {
		t.Fatalf("%d injected failures left: the test did not exercise them", n)
	}
}

// A process that admitted b3 but died before it could write the request
// that counts b3's seat taken left b3 off the players List (it waits for
// that write) and the older request on the GameServer: the next process
// reopens the room with b2's seat free under that request, b3 comes back
// with their token, and the List ends up right, the request written
// first.
func TestAgonesBackfillAdditionAcrossARestart(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	var f *faulty
	cfg := Config{BestOf: 7, ReconnectGrace: 100 * time.Millisecond, IdleTimeout: time.Hour, Reuse: true}
	_, hs, crash := runOnSDK(t, fake, cfg, func(c *sdk.Client) SDK { f = newFaulty(c); return f })
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	conns := startBackfillRoom(t, hs, fake, "m1", []string{"a1", "a2"}, []string{"b1", "b2"})
	conns["b2"].Close()
	asking := `{"match_id":"m1","ask":1,"seats":[0,1]}`
	backfillAnnotation(t, fake, "m1", asking)
	sortedPlayers(t, fake, "a1", "a2", "b1")

	const refusals = 1000
	f.failNext("annotate", refusals)
	next(t, joinBackfill(t, hs, "m1", "b3", bfSeat(1, 2, 2)), "welcome")
	waitFor(t, func() bool { return f.failing("annotate") < refusals-2 }, "the request for b3's admission never tried")
	crash()
	if v := fake.GameServer().ObjectMeta.Annotations[agones.BackfillAnnotation("m1")]; v != asking {
		t.Fatalf("m1's request after the crash %q, want the older %s", v, asking)
	}
	sortedPlayers(t, fake, "a1", "a2", "b1")

	_, hs2, _ := runOn(t, fake, cfg)
	requestOf(t, hs2, []play.Backfill{{MatchID: "m1", Ask: 1, Seats: []int{0, 1}}})
	next(t, joinBackfill(t, hs2, "m1", "b3", bfSeat(1, 2, 2)), "welcome")
	backfillAnnotation(t, fake, "m1", "")
	sortedPlayers(t, fake, "a1", "a2", "b1", "b3")
}

// The keeper takes a player the room let go off the players List only
// once the room's kept seats name them (agones.LetGo), even when that
// write fails first: the List is every room's, and once another room
// lists the player again, only the kept seats tell a process restarted
// in place that this room let them go (seating.reopened).
func TestAgonesLetGoWrittenBeforeTheListForgetsThem(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	var f *refusingLetGo
	_, hs, _ := runOnSDK(t, fake, Config{BestOf: 7, ReconnectGrace: 100 * time.Millisecond, IdleTimeout: time.Hour, Reuse: true},
		func(c *sdk.Client) SDK { f = &refusingLetGo{faulty: newFaulty(c)}; return f })
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	conns := startBackfillRoom(t, hs, fake, "m1", []string{"a1", "a2"}, []string{"b1", "b2"})

	var mu sync.Mutex
	var shown []string // m1's kept seats on the GameServer as b2 is removed
	f.setHook(func(call string) {
		if call == "remove "+agones.ListPlayers+" b2" {
			mu.Lock()
			defer mu.Unlock()
			shown = append(shown, fake.GameServer().ObjectMeta.Annotations[agones.SeatsAnnotation("m1")])
		}
	})
	f.refusals.Store(5)
	conns["b2"].Close()
	next(t, conns["a1"], "player_gone")
	sortedPlayers(t, fake, "a1", "a2", "b1")
	mu.Lock()
	defer mu.Unlock()
	for _, v := range shown {
		if seats, err := agones.DecodeSeats(v); err != nil || seats["b2"] != agones.LetGo {
			t.Fatalf("b2 removed from the players List beside kept seats %s (%v), which do not name them let go", v, err)
		}
	}
	if len(shown) == 0 {
		t.Fatal("b2 never removed by the keeper")
	}
	if n := f.refusals.Load(); n > 0 {
		t.Fatalf("%d injected failures left: the test did not exercise them", n)
	}
}

// refusingLetGo is a faulty sidecar client that refuses its next
// refusals writes of kept seats naming a player let go.
type refusingLetGo struct {
	*faulty
	refusals atomic.Int32
}

func (f *refusingLetGo) SetAnnotation(ctx context.Context, key, value string) error {
	if strings.Contains(value, `":"`+agones.LetGo+`"`) && f.refusals.Add(-1) >= 0 {
		return errors.New("injected failure: the kept seats of a room that let a player go")
	}
	return f.faulty.SetAnnotation(ctx, key, value)
}
