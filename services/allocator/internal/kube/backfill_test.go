package kube

import (
	"fmt"
	"reflect"
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
