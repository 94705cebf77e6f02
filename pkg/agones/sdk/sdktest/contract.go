package sdktest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
)

// RunContract checks an SDK gateway at url against what the game server
// relies on. The gateway's GameServer must declare a counter "rooms" and a
// list "players", each with capacity 2 and empty, and be in state
// Scheduled; a fresh fake (New with those) or a real `sdk-server --local`
// given such a GameServer file both qualify.
func RunContract(t *testing.T, url string) {
	c := sdk.New(url)
	ctx := t.Context()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	state := func() string {
		gs, err := c.GameServer(ctx)
		must("GameServer", err)
		return gs.Status.State
	}

	t.Run("ready and health", func(t *testing.T) {
		must("Ready", c.Ready(ctx))
		must("Health", c.Health(ctx))
		if s := state(); s != "Ready" {
			t.Fatalf("state after Ready = %q", s)
		}
	})
	t.Run("labels and annotations get the SDK prefix", func(t *testing.T) {
		must("SetLabel", c.SetLabel(ctx, "mode", "1v1"))
		must("SetAnnotation", c.SetAnnotation(ctx, "rooms-open", "0"))
		gs, err := c.GameServer(ctx)
		must("GameServer", err)
		if gs.ObjectMeta.Labels[sdk.LabelPrefix+"mode"] != "1v1" || gs.ObjectMeta.Annotations[sdk.LabelPrefix+"rooms-open"] != "0" {
			t.Fatalf("metadata %+v", gs.ObjectMeta)
		}
	})
	t.Run("watch sees changes", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		seen := make(chan sdk.GameServer, 16)
		go func() { _ = c.Watch(wctx, func(gs sdk.GameServer) { seen <- gs }) }()
		select {
		case <-seen: // the current state comes first
		case <-wctx.Done():
			t.Fatal("watch sent nothing")
		}
		must("SetLabel", c.SetLabel(ctx, "phase", "watched"))
		for {
			select {
			case gs := <-seen:
				if gs.ObjectMeta.Labels[sdk.LabelPrefix+"phase"] == "watched" {
					return
				}
			case <-wctx.Done():
				t.Fatal("watch did not see the label")
			}
		}
	})
	t.Run("counter", func(t *testing.T) {
		got, err := c.CounterDiff(ctx, "rooms", 2)
		must("CounterDiff +2", err)
		if got.Count != 2 || got.Capacity != 2 {
			t.Fatalf("rooms after +2: %+v", got)
		}
		if _, err := c.CounterDiff(ctx, "rooms", 1); !errors.Is(err, sdk.ErrOutOfRange) {
			t.Fatalf("+1 past capacity: %v", err)
		}
		got, err = c.CounterDiff(ctx, "rooms", -1)
		must("CounterDiff -1", err)
		if got.Count != 1 {
			t.Fatalf("rooms after -1: %+v", got)
		}
		if _, err := c.Counter(ctx, "nope"); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("unknown counter: %v", err)
		}
		gs, err := c.GameServer(ctx)
		must("GameServer", err)
		if gs.Status.Counters["rooms"].Count != 1 {
			t.Fatalf("status counters %+v", gs.Status.Counters)
		}
	})
	t.Run("list", func(t *testing.T) {
		_, err := c.AddListValue(ctx, "players", "alice")
		must("add alice", err)
		if _, err := c.AddListValue(ctx, "players", "alice"); !errors.Is(err, sdk.ErrExists) {
			t.Fatalf("alice twice: %v", err)
		}
		_, err = c.AddListValue(ctx, "players", "bob")
		must("add bob", err)
		if _, err := c.AddListValue(ctx, "players", "carol"); !errors.Is(err, sdk.ErrOutOfRange) {
			t.Fatalf("past capacity: %v", err)
		}
		l, err := c.RemoveListValue(ctx, "players", "alice")
		must("remove alice", err)
		if len(l.Values) != 1 || l.Values[0] != "bob" {
			t.Fatalf("players %+v", l)
		}
		if _, err := c.RemoveListValue(ctx, "players", "alice"); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("remove absent: %v", err)
		}
	})
	t.Run("allocate, reserve and shutdown", func(t *testing.T) {
		must("Allocate", c.Allocate(ctx))
		if s := state(); s != "Allocated" {
			t.Fatalf("state %q", s)
		}
		must("Reserve", c.Reserve(ctx, 30*time.Second))
		if s := state(); s != "Reserved" {
			t.Fatalf("state %q", s)
		}
		must("Shutdown", c.Shutdown(ctx))
		if s := state(); s != "Shutdown" {
			t.Fatalf("state %q", s)
		}
	})
}
