package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
)

// The names RunContract expects the GameServer to declare, each with
// capacity 2, empty.
const (
	ContractCounter = "sessions"
	ContractList    = "players"
)

// ContractOptions is a fake's GameServer as RunContract expects it.
func ContractOptions() Options {
	return Options{Counters: map[string]int64{ContractCounter: 2}, Lists: map[string]int64{ContractList: 2}}
}

// RunContract checks an SDK gateway at url against what the game server
// relies on and against what Agones' sdk-server was seen to do. The
// gateway's GameServer must declare a counter ContractCounter and a list
// ContractList, each with capacity 2 and empty, and be in state
// Scheduled; a fresh fake (New with ContractOptions) or a real
// `sdk-server --local` given such a GameServer file both qualify.
func RunContract(t *testing.T, url string) {
	k := contract{c: sdk.New(url), url: url}
	t.Run("ready and health", k.readyAndHealth)
	t.Run("labels and annotations get the SDK prefix", k.metadata)
	t.Run("an empty label key is taken", k.emptyLabelKey)
	t.Run("watch sees changes", k.watch)
	t.Run("counter", k.counter)
	t.Run("a capacity below the count keeps the count", k.capacityBelowCount)
	t.Run("capacity and countDiff in one update are both applied", k.capacityAndDiff)
	t.Run("list", k.list)
	t.Run("a full list is out of range before a duplicate", k.fullBeforeDuplicate)
	t.Run("an empty list value is a value", k.emptyListValue)
	t.Run("watch is not told of counter or list writes", k.watchQuiet)
	t.Run("an unknown list operation or method answers 501", k.notAllowed)
	t.Run("an unknown path answers 404", k.notFound)
	t.Run("allocate, reserve and shutdown", k.lifecycle)
}

// contract is the gateway under check; each method is one sub-check, run
// in order on the same GameServer (each starts where the one before left
// it). Checks read state back (Counter, List, GameServer) rather than
// trust a write's answer, which a sidecar in a cluster leaves empty.
type contract struct {
	c   *sdk.Client
	url string
}

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

// counterIs checks the counter as the gateway reads it back.
func (k contract) counterIs(t *testing.T, count, capacity int64) {
	t.Helper()
	got, err := k.c.Counter(t.Context(), ContractCounter)
	must(t, "Counter", err)
	if got.Count != sdk.Int64(count) || got.Capacity != sdk.Int64(capacity) {
		t.Fatalf("%s = %d/%d, want %d/%d", ContractCounter, got.Count, got.Capacity, count, capacity)
	}
}

// listIs checks the list's values as the gateway reads them back.
func (k contract) listIs(t *testing.T, want ...string) {
	t.Helper()
	l, err := k.c.List(t.Context(), ContractList)
	must(t, "List", err)
	if !slices.Equal(l.Values, want) {
		t.Fatalf("%s = %q, want %q", ContractList, l.Values, want)
	}
}

func (k contract) counter(t *testing.T) {
	ctx := t.Context()
	_, err := k.c.CounterDiff(ctx, ContractCounter, 2)
	must(t, "CounterDiff +2", err)
	k.counterIs(t, 2, 2)
	if _, err := k.c.CounterDiff(ctx, ContractCounter, 1); !errors.Is(err, sdk.ErrOutOfRange) {
		t.Fatalf("+1 past capacity: %v", err)
	}
	_, err = k.c.CounterDiff(ctx, ContractCounter, -1)
	must(t, "CounterDiff -1", err)
	k.counterIs(t, 1, 2)
	if _, err := k.c.Counter(ctx, "nope"); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("unknown counter: %v", err)
	}
	gs, err := k.c.GameServer(ctx)
	must(t, "GameServer", err)
	if gs.Status.Counters[ContractCounter].Count != 1 {
		t.Fatalf("status counters %+v", gs.Status.Counters)
	}
}

// capacityBelowCount: the count stays above a lowered capacity; only a
// later change of the count is checked against it.
func (k contract) capacityBelowCount(t *testing.T) {
	_, err := k.c.SetCounterCapacity(t.Context(), ContractCounter, 0)
	must(t, "capacity 0", err)
	k.counterIs(t, 1, 0)
	if _, err := k.c.CounterDiff(t.Context(), ContractCounter, 1); !errors.Is(err, sdk.ErrOutOfRange) {
		t.Fatalf("+1 above the capacity: %v", err)
	}
	k.counterIs(t, 1, 0)
}

// capacityAndDiff: one update applies capacity, then countDiff against
// it, all or nothing.
func (k contract) capacityAndDiff(t *testing.T) {
	three, five := int64(3), int64(5)
	_, err := k.c.UpdateCounter(t.Context(), ContractCounter, sdk.CounterUpdate{Capacity: &three, CountDiff: 2})
	must(t, "capacity 3 and +2", err)
	k.counterIs(t, 3, 3)
	_, err = k.c.UpdateCounter(t.Context(), ContractCounter, sdk.CounterUpdate{Capacity: &five, CountDiff: 3})
	if !errors.Is(err, sdk.ErrOutOfRange) {
		t.Fatalf("capacity 5 and +3 (6 > 5): %v", err)
	}
	k.counterIs(t, 3, 3) // the capacity of the refused update is not kept
}

func (k contract) list(t *testing.T) {
	ctx := t.Context()
	_, err := k.c.AddListValue(ctx, ContractList, "alice")
	must(t, "add alice", err)
	if _, err := k.c.AddListValue(ctx, ContractList, "alice"); !errors.Is(err, sdk.ErrExists) {
		t.Fatalf("alice twice: %v", err)
	}
	_, err = k.c.AddListValue(ctx, ContractList, "bob")
	must(t, "add bob", err)
	if _, err := k.c.AddListValue(ctx, ContractList, "carol"); !errors.Is(err, sdk.ErrOutOfRange) {
		t.Fatalf("past capacity: %v", err)
	}
	_, err = k.c.RemoveListValue(ctx, ContractList, "alice")
	must(t, "remove alice", err)
	k.listIs(t, "bob")
	if _, err := k.c.RemoveListValue(ctx, ContractList, "alice"); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("remove absent: %v", err)
	}
	if _, err := k.c.List(ctx, "nope"); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("unknown list: %v", err)
	}
}

// fullBeforeDuplicate: adding to a full list is out of range even for a
// value the list holds (room is checked first).
func (k contract) fullBeforeDuplicate(t *testing.T) {
	_, err := k.c.AddListValue(t.Context(), ContractList, "carol")
	must(t, "add carol", err)
	if _, err := k.c.AddListValue(t.Context(), ContractList, "bob"); !errors.Is(err, sdk.ErrOutOfRange) || errors.Is(err, sdk.ErrExists) {
		t.Fatalf("bob again into a full list: %v", err)
	}
	_, err = k.c.RemoveListValue(t.Context(), ContractList, "carol")
	must(t, "remove carol", err)
	k.listIs(t, "bob")
}

func (k contract) emptyListValue(t *testing.T) {
	_, err := k.c.AddListValue(t.Context(), ContractList, "")
	must(t, "add the empty value", err)
	k.listIs(t, "bob", "")
	_, err = k.c.RemoveListValue(t.Context(), ContractList, "")
	must(t, "remove the empty value", err)
	k.listIs(t, "bob")
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

// emptyLabelKey: the sdk-server checks no key; an empty one becomes the
// bare prefix.
func (k contract) emptyLabelKey(t *testing.T) {
	must(t, "SetLabel with no key", k.c.SetLabel(t.Context(), "", "blank"))
	gs, err := k.c.GameServer(t.Context())
	must(t, "GameServer", err)
	if got, ok := gs.ObjectMeta.Labels[sdk.LabelPrefix]; !ok || got != "blank" {
		t.Fatalf("labels %v", gs.ObjectMeta.Labels)
	}
}

// watchQuiet: counter and list writes through the SDK stream nothing in
// local mode, so the first change streamed after them is the label set
// after them (carrying their effect, as every event carries the whole
// GameServer).
func (k contract) watchQuiet(t *testing.T) {
	wctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	seen := make(chan sdk.GameServer, 16)
	go func() { _ = k.c.Watch(wctx, func(gs sdk.GameServer) { seen <- gs }) }()
	next := func(what string) sdk.GameServer {
		t.Helper()
		select {
		case gs := <-seen:
			return gs
		case <-wctx.Done():
			t.Fatalf("watch: no %s", what)
			return sdk.GameServer{}
		}
	}
	next("current state")
	ctx := t.Context()
	_, err := k.c.CounterDiff(ctx, ContractCounter, -1)
	must(t, "CounterDiff -1", err)
	_, err = k.c.AddListValue(ctx, ContractList, "dave")
	must(t, "add dave", err)
	_, err = k.c.RemoveListValue(ctx, ContractList, "dave")
	must(t, "remove dave", err)
	must(t, "SetLabel", k.c.SetLabel(ctx, "phase", "quiet"))
	gs := next("event after the writes")
	if gs.ObjectMeta.Labels[sdk.LabelPrefix+"phase"] != "quiet" {
		t.Fatalf("a counter or list write was streamed: %+v", gs)
	}
	if c := gs.Status.Counters[ContractCounter]; c.Count != 2 {
		t.Fatalf("streamed counter %+v, want count 2", c)
	}
}

// raw sends a request the client has no method for and reads the
// gateway's JSON error.
func (k contract) raw(t *testing.T, method, path, body string) (status int, e sdk.Error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, k.url+path, strings.NewReader(body))
	must(t, "request", err)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	must(t, method+" "+path, err)
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&e); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %v", method, path, res.StatusCode, err)
	}
	return res.StatusCode, e
}

// notAllowed: grpc-gateway answers a path that an endpoint has under
// another method (a list operation other than addValue and removeValue
// is such a path: GET /v1beta1/lists/{name}) with code 12.
func (k contract) notAllowed(t *testing.T) {
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1beta1/lists/" + ContractList + ":clear", `{"value":"x"}`},
		{http.MethodPost, "/v1beta1/lists/" + ContractList, `{"value":"x"}`},
		{http.MethodGet, "/ready", ""},
	} {
		status, e := k.raw(t, c.method, c.path, c.body)
		if status != http.StatusNotImplemented || e.Code != 12 || e.Message != "Method Not Allowed" {
			t.Errorf("%s %s: %d %+v, want 501 code 12 Method Not Allowed", c.method, c.path, status, e)
		}
	}
	k.listIs(t, "bob")
}

func (k contract) notFound(t *testing.T) {
	for _, path := range []string{"/nope", "/v1beta1/lists/" + ContractList + "/values"} {
		status, e := k.raw(t, http.MethodGet, path, "")
		if status != http.StatusNotFound || e.Code != 5 || e.Message != "Not Found" {
			t.Errorf("GET %s: %d %+v, want 404 code 5 Not Found", path, status, e)
		}
	}
}
