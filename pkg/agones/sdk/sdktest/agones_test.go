package sdktest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
)

// ready is a fake whose GameServer is Ready, with rooms and players
// lists of the given capacities.
func ready(t *testing.T, rooms, players int64) *Server {
	t.Helper()
	s := New(t, Options{
		Labels:   map[string]string{"agones.dev/fleet": "game"},
		Counters: map[string]int64{"sessions": 3},
		Lists:    map[string]int64{agones.ListRooms: rooms, agones.ListPlayers: players},
	})
	if err := sdk.New(s.URL).Ready(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func values(s *Server, list string) []string { return s.GameServer().Status.Lists[list].Values }

func room(players ...string) agones.Room {
	return agones.Room{Mode: "ffa", Teams: [][]string{players[:1], players[1:]}}
}

func TestAllocateARoom(t *testing.T) {
	s := ready(t, 2, 4)
	if err := s.Allocate(RoomAllocation("m1", room("a", "b"))); err != nil {
		t.Fatal(err)
	}
	gs := s.GameServer()
	if gs.Status.State != "Allocated" || !slices.Equal(values(s, agones.ListRooms), []string{"m1"}) ||
		!slices.Equal(values(s, agones.ListPlayers), []string{"a", "b"}) {
		t.Fatalf("after m1: %+v", gs.Status)
	}
	r, err := agones.DecodeRoom(gs.ObjectMeta.Annotations[agones.MatchAnnotationPrefix+"m1"])
	if err != nil || !reflect.DeepEqual(r, room("a", "b")) {
		t.Fatalf("annotation: %+v, %v", r, err)
	}
	if _, err := time.Parse(time.RFC3339Nano, gs.ObjectMeta.Annotations[LastAllocatedAnnotation]); err != nil {
		t.Fatalf("last-allocated: %v", err)
	}
	// Allocated with room: the first selector takes it again.
	if err := s.Allocate(RoomAllocation("m2", room("c", "d"))); err != nil {
		t.Fatal(err)
	}
	// Rooms full: nothing matches, nothing changes.
	before := s.GameServer()
	if err := s.Allocate(RoomAllocation("m3", room("e", "f"))); !errors.Is(err, ErrUnAllocated) {
		t.Fatalf("third room on a two-room server: %v", err)
	}
	if after := s.GameServer(); !reflect.DeepEqual(before, after) {
		t.Fatalf("an UnAllocated allocation changed the server:\n%+v\n%+v", before, after)
	}
}

// TestAllocateNeverPicksAFullPlayersList: the selector asks for a seat
// per player, so a players list without them is never chosen, though the
// rooms list has room.
func TestAllocateNeverPicksAFullPlayersList(t *testing.T) {
	s := ready(t, 3, 3)
	if err := s.Allocate(RoomAllocation("m1", room("a", "b"))); err != nil {
		t.Fatal(err)
	}
	if err := s.Allocate(RoomAllocation("m2", room("c", "d"))); !errors.Is(err, ErrUnAllocated) {
		t.Fatalf("two seats asked of one: %v", err)
	}
}

// TestAllocateTruncatesLikeAgones: without a selector asking for room,
// Agones appends what fits, drops duplicates, and reports nothing; every
// other action of the allocation is applied.
func TestAllocateTruncatesLikeAgones(t *testing.T) {
	s := ready(t, 2, 3)
	spec := agones.GameServerAllocationSpec{
		Metadata: &agones.MetaPatch{Labels: map[string]string{"l": "v"}, Annotations: map[string]string{"a": "v"}},
		Lists: map[string]agones.ListAction{
			agones.ListRooms:   {AddValues: []string{"m1"}},
			agones.ListPlayers: {AddValues: []string{"a", "b", "a", "c", "d"}},
		},
	}
	if err := s.Allocate(spec); err != nil {
		t.Fatal(err)
	}
	gs := s.GameServer()
	if !slices.Equal(values(s, agones.ListPlayers), []string{"a", "b", "c"}) || !slices.Equal(values(s, agones.ListRooms), []string{"m1"}) ||
		gs.ObjectMeta.Labels["l"] != "v" || gs.ObjectMeta.Annotations["a"] != "v" || len(s.Warnings()) != 0 {
		t.Fatalf("status %+v, meta %+v, warnings %q", gs.Status, gs.ObjectMeta, s.Warnings())
	}
	// No selector is Agones' default one: Ready only.
	if err := s.Allocate(spec); !errors.Is(err, ErrUnAllocated) {
		t.Fatalf("an Allocated server taken by a selector-free allocation: %v", err)
	}
}

func TestAllocateCounterAndListActions(t *testing.T) {
	s := ready(t, 2, 4)
	two, big, minus := int64(2), int64(1001), int64(-1)
	spec := agones.GameServerAllocationSpec{
		Counters: map[string]agones.CounterAction{
			"sessions": {Action: "Increment", Amount: 5, Capacity: &two}, // capacity first, then clamped
			"nope":     {Action: "Increment", Amount: 1},
		},
		Lists: map[string]agones.ListAction{
			agones.ListRooms:   {Capacity: &big, AddValues: []string{"m1"}},
			agones.ListPlayers: {AddValues: []string{"a", "b", "c"}, DeleteValues: []string{"zed"}},
			"nope":             {AddValues: []string{"x"}},
		},
	}
	if err := s.Allocate(spec); err != nil {
		t.Fatal(err)
	}
	gs := s.GameServer()
	if c := gs.Status.Counters["sessions"]; c.Count != 2 || c.Capacity != 2 {
		t.Fatalf("sessions %+v, want 2/2", c)
	}
	if l := gs.Status.Lists[agones.ListRooms]; l.Capacity != 2 || !slices.Equal(l.Values, []string{"m1"}) {
		t.Fatalf("rooms %+v: a capacity above 1000 is skipped, the values still added", l)
	}
	w := strings.Join(s.Warnings(), "\n")
	if !strings.Contains(w, "CounterActionError: counter nope") || !strings.Contains(w, "ListActionError: list nope") || !strings.Contains(w, "capacity 1001") {
		t.Fatalf("warnings %q", w)
	}
	spec = agones.GameServerAllocationSpec{
		Selectors: []agones.GameServerSelector{{GameServerState: "Allocated"}},
		Counters:  map[string]agones.CounterAction{"sessions": {Action: "Decrement", Amount: 9}},
		Lists:     map[string]agones.ListAction{agones.ListPlayers: {Capacity: &two, DeleteValues: []string{"a"}, AddValues: []string{"d"}}},
	}
	if err := s.Allocate(spec); err != nil {
		t.Fatal(err)
	}
	gs = s.GameServer()
	if c := gs.Status.Counters["sessions"]; c.Count != 0 {
		t.Fatalf("sessions %+v, want 0 (clamped)", c)
	}
	// Agones' order: capacity 2 cuts [a b c] to [a b], d finds no room,
	// then a is deleted: a delete frees no room for the same action's adds.
	if l := gs.Status.Lists[agones.ListPlayers]; l.Capacity != 2 || !slices.Equal(l.Values, []string{"b"}) {
		t.Fatalf("players %+v, want capacity 2 and [b]", l)
	}
	// A negative counter capacity: Agones' validation refuses the request
	// whole, before any selector (this one matches the Allocated server),
	// so nothing changes and no warning is recorded.
	before, warned := s.GameServer(), len(s.Warnings())
	neg := agones.GameServerAllocationSpec{
		Selectors: []agones.GameServerSelector{{GameServerState: "Allocated"}},
		Counters:  map[string]agones.CounterAction{"sessions": {Capacity: &minus}},
	}
	if err := s.Allocate(neg); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "spec.counters[sessions].capacity") {
		t.Fatalf("negative counter capacity: %v", err)
	}
	if after := s.GameServer(); !reflect.DeepEqual(before, after) || len(s.Warnings()) != warned {
		t.Fatalf("a refused allocation changed the server:\n%+v\n%+v\nwarnings %q", before, after, s.Warnings())
	}
}

func TestAllocateSelectors(t *testing.T) {
	s := ready(t, 2, 4)
	for _, c := range []struct {
		name string
		sel  agones.GameServerSelector
		want bool
	}{
		{"fleet label", agones.GameServerSelector{MatchLabels: map[string]string{"agones.dev/fleet": "game"}}, true},
		{"other fleet", agones.GameServerSelector{MatchLabels: map[string]string{"agones.dev/fleet": "other"}}, false},
		{"In", agones.GameServerSelector{MatchExpressions: []agones.LabelSelectorRequirement{{Key: "agones.dev/fleet", Operator: "In", Values: []string{"x", "game"}}}}, true},
		{"NotIn absent", agones.GameServerSelector{MatchExpressions: []agones.LabelSelectorRequirement{{Key: "lock", Operator: "NotIn", Values: []string{"x"}}}}, true},
		{"DoesNotExist", agones.GameServerSelector{MatchExpressions: []agones.LabelSelectorRequirement{{Key: "agones.dev/fleet", Operator: "DoesNotExist"}}}, false},
		{"Allocated", agones.GameServerSelector{GameServerState: "Allocated"}, false},
		{"counter room", agones.GameServerSelector{Counters: map[string]agones.CounterSelector{"sessions": {MinAvailable: 3, MaxCount: 0}}}, true},
		{"counter too little room", agones.GameServerSelector{Counters: map[string]agones.CounterSelector{"sessions": {MinAvailable: 4}}}, false},
		{"counter max available", agones.GameServerSelector{Counters: map[string]agones.CounterSelector{"sessions": {MaxAvailable: 2}}}, false},
		{"unknown counter", agones.GameServerSelector{Counters: map[string]agones.CounterSelector{"nope": {}}}, false},
		{"list contains", agones.GameServerSelector{Lists: map[string]agones.ListSelector{agones.ListRooms: {ContainsValue: "m0"}}}, false},
		{"list room", agones.GameServerSelector{Lists: map[string]agones.ListSelector{agones.ListPlayers: {MinAvailable: 4}}}, true},
	} {
		if got := matches(c.sel, s.GameServer()); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestWatchStreamsAllocationsNotSDKWrites: Agones' changes reach the
// watch; the game server's own counter and list writes do not (local
// mode), and no streamed state is dropped.
func TestWatchStreamsAllocationsNotSDKWrites(t *testing.T) {
	s := ready(t, 2, 4)
	c := sdk.New(s.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	seen := make(chan sdk.GameServer, 16)
	go func() { _ = c.Watch(ctx, func(gs sdk.GameServer) { seen <- gs }) }()
	<-seen
	if err := s.Allocate(RoomAllocation("m1", room("a", "b"))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RemoveListValue(ctx, agones.ListPlayers, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CounterDiff(ctx, "sessions", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Allocate(RoomAllocation("m2", room("c", "d"))); err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]string{{"a", "b"}, {"b", "c", "d"}} {
		select {
		case gs := <-seen:
			if got := gs.Status.Lists[agones.ListPlayers].Values; !slices.Equal(got, want) {
				t.Fatalf("event %d: players %q, want %q", i, got, want)
			}
		case <-ctx.Done():
			t.Fatalf("event %d never came", i)
		}
	}
}
