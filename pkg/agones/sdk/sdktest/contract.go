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
	k := contract{c: sdk.New(url)}
	t.Run("ready and health", k.readyAndHealth)
	t.Run("labels and annotations get the SDK prefix", k.metadata)
	t.Run("watch sees changes", k.watch)
	t.Run("counter", k.counter)
	t.Run("list", k.list)
	t.Run("allocate, reserve and shutdown", k.lifecycle)
}

// contract is the gateway under check; each method is one sub-check, run
// in order on the same GameServer (each starts where the one before left
// it).
type contract struct{ c *sdk.Client }

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (k contract) state(t *testing.T) string {
	t.Helper()
	gs, err := k.c.GameServer(t.Context())
	must(t, "GameServer", err)
	return gs.Status.State
}

func (k contract) readyAndHealth(t *testing.T) {
	ctx := t.Context()
	must(t, "Ready", k.c.Ready(ctx))
	must(t, "Health", k.c.Health(ctx))
	if s := k.state(t); s != "Ready" {
		t.Fatalf("state after Ready = %q", s)
	}
}

func (k contract) metadata(t *testing.T) {
	ctx := t.Context()
	must(t, "SetLabel", k.c.SetLabel(ctx, "mode", "1v1"))
	must(t, "SetAnnotation", k.c.SetAnnotation(ctx, "rooms-open", "0"))
	gs, err := k.c.GameServer(ctx)
	must(t, "GameServer", err)
	if gs.ObjectMeta.Labels[sdk.LabelPrefix+"mode"] != "1v1" || gs.ObjectMeta.Annotations[sdk.LabelPrefix+"rooms-open"] != "0" {
		t.Fatalf("metadata %+v", gs.ObjectMeta)
	}
}

func (k contract) watch(t *testing.T) {
	wctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	seen := make(chan sdk.GameServer, 16)
	go func() { _ = k.c.Watch(wctx, func(gs sdk.GameServer) { seen <- gs }) }()
	select {
	case <-seen: // the current state comes first
	case <-wctx.Done():
		t.Fatal("watch sent nothing")
	}
	must(t, "SetLabel", k.c.SetLabel(t.Context(), "phase", "watched"))
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
}

func (k contract) counter(t *testing.T) {
	ctx := t.Context()
	got, err := k.c.CounterDiff(ctx, "rooms", 2)
	must(t, "CounterDiff +2", err)
	if got.Count != 2 || got.Capacity != 2 {
		t.Fatalf("rooms after +2: %+v", got)
	}
	if _, err := k.c.CounterDiff(ctx, "rooms", 1); !errors.Is(err, sdk.ErrOutOfRange) {
		t.Fatalf("+1 past capacity: %v", err)
	}
	got, err = k.c.CounterDiff(ctx, "rooms", -1)
	must(t, "CounterDiff -1", err)
	if got.Count != 1 {
		t.Fatalf("rooms after -1: %+v", got)
	}
	if _, err := k.c.Counter(ctx, "nope"); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("unknown counter: %v", err)
	}
	gs, err := k.c.GameServer(ctx)
	must(t, "GameServer", err)
	if gs.Status.Counters["rooms"].Count != 1 {
		t.Fatalf("status counters %+v", gs.Status.Counters)
	}
}

func (k contract) list(t *testing.T) {
	ctx := t.Context()
	_, err := k.c.AddListValue(ctx, "players", "alice")
	must(t, "add alice", err)
	if _, err := k.c.AddListValue(ctx, "players", "alice"); !errors.Is(err, sdk.ErrExists) {
		t.Fatalf("alice twice: %v", err)
	}
	_, err = k.c.AddListValue(ctx, "players", "bob")
	must(t, "add bob", err)
	if _, err := k.c.AddListValue(ctx, "players", "carol"); !errors.Is(err, sdk.ErrOutOfRange) {
		t.Fatalf("past capacity: %v", err)
	}
	l, err := k.c.RemoveListValue(ctx, "players", "alice")
	must(t, "remove alice", err)
	if len(l.Values) != 1 || l.Values[0] != "bob" {
		t.Fatalf("players %+v", l)
	}
	if _, err := k.c.RemoveListValue(ctx, "players", "alice"); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("remove absent: %v", err)
	}
}

func (k contract) lifecycle(t *testing.T) {
	ctx := t.Context()
	must(t, "Allocate", k.c.Allocate(ctx))
	if s := k.state(t); s != "Allocated" {
		t.Fatalf("state %q", s)
	}
	must(t, "Reserve", k.c.Reserve(ctx, 30*time.Second))
	if s := k.state(t); s != "Reserved" {
		t.Fatalf("state %q", s)
	}
	must(t, "Shutdown", k.c.Shutdown(ctx))
	if s := k.state(t); s != "Shutdown" {
		t.Fatalf("state %q", s)
	}
}
