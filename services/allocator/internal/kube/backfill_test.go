package kube

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
)

// gameServer is a GameServer as the informer caches it: its live rooms
// and its annotations.
func gameServer(name string, rooms []string, ann map[string]string) *unstructured.Unstructured {
	values := []any{}
	for _, r := range rooms {
		values = append(values, r)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "agones.dev/v1", "kind": "GameServer",
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"status": map[string]any{"state": agones.StateAllocated, "lists": map[string]any{
			agones.ListRooms: map[string]any{"capacity": int64(4), "values": values},
		}},
	}}
	u.SetAnnotations(ann)
	return u
}

// seating puts players on u's players List: who holds a seat on it.
func seating(u *unstructured.Unstructured, players ...string) *unstructured.Unstructured {
	values := []any{}
	for _, p := range players {
		values = append(values, p)
	}
	_ = unstructured.SetNestedField(u.Object, map[string]any{"capacity": int64(8), "values": values}, "status", "lists", agones.ListPlayers)
	return u
}

// TestBackfillsReadTheLiveRooms: only a live room (in the rooms List)
// asks, once however often the List names it, with the request its
// annotation holds, shown by its GameServer in its cluster (whose
// allocation record the allocator checks); a room that ended keeps its
// annotation (Agones never removes one) and asks for no one, as does a
// room whose annotation is "" (filled) or does not read. No request
// shows anyone seated, whatever the players List holds: the List may run
// ahead of the request (Backfills), and a promise must then hold.
func TestBackfillsReadTheLiveRooms(t *testing.T) {
	t.Parallel()
	asks := play.Backfill{MatchID: "m1", Ask: 2, Seats: []int{0, 1}}
	ended := play.Backfill{MatchID: "m0", Ask: 1, Seats: []int{1, 0}}
	store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{roomIndex: roomsOf})
	for _, gs := range []*unstructured.Unstructured{
		seating(gameServer("gs-1", []string{"m1", "m2", "m3", "m1"}, map[string]string{
			agones.BackfillAnnotation("m1"): agones.EncodeBackfill(asks),
			agones.BackfillAnnotation("m0"): agones.EncodeBackfill(ended),
			agones.BackfillAnnotation("m2"): "",
			agones.BackfillAnnotation("m3"): "{not json",
		}), "alice", "bob", "erin"),
		seating(gameServer("gs-2", nil, nil), "zoe"),
	} {
		if err := store.Add(gs); err != nil {
			t.Fatal(err)
		}
	}
	synced := false
	c := &cluster{Cluster: Cluster{Name: "eu-1"}}
	c.informer.Store(&informer{servers: store, synced: func() bool { return synced }})
	b := &Backend{clusters: []*cluster{c}}
	if _, known := b.Backfills(); known {
		t.Fatal("known before the cache synced")
	}
	synced = true
	got, known := b.Backfills()
	want := []allocator.ShownBackfill{{Backfill: asks, Server: allocator.Server{Name: "gs-1", Cluster: "eu-1"}}}
	if !known || !reflect.DeepEqual(got, want) {
		t.Fatalf("Backfills = %+v, %v; want only %+v", got, known, want)
	}
}

// TestBackfillsOfAServerAreBounded: a GameServer whose rooms List names
// more rooms than a server may host (Agones caps a List at 1000; the
// cache holds what the API server gave) shows allocator.MaxRoomsShown.
func TestBackfillsOfAServerAreBounded(t *testing.T) {
	t.Parallel()
	var rooms []string
	ann := map[string]string{}
	for i := range 1200 {
		id := fmt.Sprintf("m%d", i)
		rooms = append(rooms, id)
		ann[agones.BackfillAnnotation(id)] = agones.EncodeBackfill(play.Backfill{MatchID: id, Ask: 1, Seats: []int{0, 1}})
	}
	if got := roomRequests(gameServer("gs-1", rooms, ann)); len(got) != allocator.MaxRoomsShown {
		t.Fatalf("%d requests shown, want %d", len(got), allocator.MaxRoomsShown)
	}
}

// TestRoomsAreTheAllocatedServersLists: the rooms open are those in the
// rooms Lists of Allocated GameServers, each once, with its server; a
// server shutting down shows none (its rooms go with it, and their
// records need not be kept).
func TestRoomsAreTheAllocatedServersLists(t *testing.T) {
	t.Parallel()
	store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{roomIndex: roomsOf})
	shutting := gameServer("gs-3", []string{"m9"}, nil)
	_ = unstructured.SetNestedField(shutting.Object, "Shutdown", "status", "state")
	for _, gs := range []*unstructured.Unstructured{gameServer("gs-1", []string{"m1", "m2", "m1"}, nil), gameServer("gs-2", nil, nil), shutting} {
		if err := store.Add(gs); err != nil {
			t.Fatal(err)
		}
	}
	c := &cluster{Cluster: Cluster{Name: "eu-1"}}
	c.informer.Store(&informer{servers: store, synced: func() bool { return true }})
	b := &Backend{clusters: []*cluster{c}}
	got, known := b.Rooms()
	gs1 := allocator.Server{Name: "gs-1", Cluster: "eu-1"}
	want := []allocator.ShownRoom{{MatchID: "m1", Server: gs1}, {MatchID: "m2", Server: gs1}}
	if !known || !reflect.DeepEqual(got, want) {
		t.Fatalf("Rooms = %+v, %v; want %+v", got, known, want)
	}
}

// TestRoomBackfillsReadOnlyTheRoom: a room's requests are those of the
// servers that list it live, its own and any other that shows it (the
// allocator checks which one its record names), as Backfills shows
// them; a room one lists and does not ask for, or lists past
// allocator.MaxRoomsShown, or one on a server that is not Allocated,
// has none.
func TestRoomBackfillsReadOnlyTheRoom(t *testing.T) {
	t.Parallel()
	ask := func(id string) string {
		return agones.EncodeBackfill(play.Backfill{MatchID: id, Ask: 1, Seats: []int{0, 1}})
	}
	var many []string
	for i := range allocator.MaxRoomsShown {
		many = append(many, fmt.Sprintf("x%d", i))
	}
	shutting := gameServer("gs-4", []string{"m1"}, map[string]string{agones.BackfillAnnotation("m1"): ask("m1")})
	_ = unstructured.SetNestedField(shutting.Object, "Shutdown", "status", "state")
	store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{roomIndex: roomsOf})
	for _, gs := range []*unstructured.Unstructured{
		gameServer("gs-1", []string{"m1", "m2"}, map[string]string{agones.BackfillAnnotation("m1"): ask("m1")}),
		gameServer("gs-2", []string{"m1"}, map[string]string{agones.BackfillAnnotation("m1"): ask("m1")}),
		gameServer("gs-3", append(many, "m1"), map[string]string{agones.BackfillAnnotation("m1"): ask("m1")}),
		shutting,
	} {
		if err := store.Add(gs); err != nil {
			t.Fatal(err)
		}
	}
	c := &cluster{Cluster: Cluster{Name: "eu-1"}}
	c.informer.Store(&informer{servers: store, synced: func() bool { return true }})
	b := &Backend{clusters: []*cluster{c}}
	got, known := b.RoomBackfills("m1")
	names := []string{}
	for _, r := range got {
		names = append(names, r.Server.Name)
	}
	slices.Sort(names)
	if !known || !slices.Equal(names, []string{"gs-1", "gs-2"}) {
		t.Fatalf("m1's requests from %v (known %v), want gs-1's and gs-2's", names, known)
	}
	if got, _ := b.RoomBackfills("m2"); len(got) != 0 {
		t.Fatalf("m2, which asks for no one: %+v", got)
	}
}

// TestBackfillsAreDecodedOncePerVersion: a GameServer's requests are
// read again when its resourceVersion changes, not on every poll.
func TestBackfillsAreDecodedOncePerVersion(t *testing.T) {
	t.Parallel()
	gs := gameServer("gs-1", []string{"m1"}, map[string]string{
		agones.BackfillAnnotation("m1"): agones.EncodeBackfill(play.Backfill{MatchID: "m1", Ask: 1, Seats: []int{0, 1}})})
	gs.SetResourceVersion("10")
	store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{roomIndex: roomsOf})
	if err := store.Add(gs); err != nil {
		t.Fatal(err)
	}
	c := &cluster{Cluster: Cluster{Name: "eu-1"}}
	c.informer.Store(&informer{servers: store, synced: func() bool { return true }})
	b := &Backend{clusters: []*cluster{c}}
	ask := func() int {
		t.Helper()
		got, _ := b.Backfills()
		if len(got) != 1 {
			t.Fatalf("requests %+v", got)
		}
		return got[0].Ask
	}
	if a := ask(); a != 1 {
		t.Fatalf("ask %d", a)
	}
	// The same version with other annotations: what was read holds (the
	// API server never does this; the test does, to see the read kept).
	changed := gs.DeepCopy()
	changed.SetAnnotations(map[string]string{
		agones.BackfillAnnotation("m1"): agones.EncodeBackfill(play.Backfill{MatchID: "m1", Ask: 2, Seats: []int{0, 1}})})
	if err := store.Update(changed); err != nil {
		t.Fatal(err)
	}
	if a := ask(); a != 1 {
		t.Fatalf("ask %d at the same version, want the one read", a)
	}
	changed.SetResourceVersion("11")
	if err := store.Update(changed); err != nil {
		t.Fatal(err)
	}
	if a := ask(); a != 2 {
		t.Fatalf("ask %d at a new version, want 2", a)
	}
}

// crowded is a backend over 20 Allocated servers each showing a
// thousand rooms asking for players (the most a server shows), at
// resourceVersion "1".
func crowded(tb testing.TB) *Backend {
	store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{roomIndex: roomsOf})
	for s := range 20 {
		var rooms []string
		ann := map[string]string{}
		for i := range allocator.MaxRoomsShown {
			id := fmt.Sprintf("s%d-m%d", s, i)
			rooms = append(rooms, id)
			ann[agones.BackfillAnnotation(id)] = agones.EncodeBackfill(play.Backfill{MatchID: id, Ask: 1, Seats: []int{0, 1}})
		}
		gs := gameServer(fmt.Sprintf("gs-%d", s), rooms, ann)
		gs.SetResourceVersion("1")
		if err := store.Add(gs); err != nil {
			tb.Fatal(err)
		}
	}
	c := &cluster{Cluster: Cluster{Name: "eu-1"}}
	c.informer.Store(&informer{servers: store, synced: func() bool { return true }})
	return &Backend{clusters: []*cluster{c}}
}

// BenchmarkBackfills: a poll of the crowded servers, unchanged since the
// last poll.
func BenchmarkBackfills(b *testing.B) {
	be := crowded(b)
	for b.Loop() {
		if got, _ := be.Backfills(); len(got) != 20*allocator.MaxRoomsShown {
			b.Fatalf("%d requests", len(got))
		}
	}
}

// BenchmarkRoomBackfills: a fill's check of its room among the crowded
// servers.
func BenchmarkRoomBackfills(b *testing.B) {
	be := crowded(b)
	for b.Loop() {
		if got, _ := be.RoomBackfills("s7-m500"); len(got) != 1 {
			b.Fatalf("%d requests", len(got))
		}
	}
}
