package kube

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
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

// TestBackfillsReadTheLiveRooms: only a live room (in the rooms List)
// asks, with the request its annotation holds; a room that ended keeps
// its annotation (Agones never removes one) and asks for no one, as does
// a room whose annotation is "" (filled) or does not read.
func TestBackfillsReadTheLiveRooms(t *testing.T) {
	t.Parallel()
	asks := play.Backfill{MatchID: "m1", Ask: 2, Seats: []int{0, 1}}
	ended := play.Backfill{MatchID: "m0", Ask: 1, Seats: []int{1, 0}}
	store := cache.NewStore(cache.MetaNamespaceKeyFunc)
	for _, gs := range []*unstructured.Unstructured{
		gameServer("gs-1", []string{"m1", "m2", "m3"}, map[string]string{
			agones.BackfillAnnotation("m1"): agones.EncodeBackfill(asks),
			agones.BackfillAnnotation("m0"): agones.EncodeBackfill(ended),
			agones.BackfillAnnotation("m2"): "",
			agones.BackfillAnnotation("m3"): "{not json",
		}),
		gameServer("gs-2", nil, nil),
	} {
		if err := store.Add(gs); err != nil {
			t.Fatal(err)
		}
	}
	synced := false
	b := &Backend{clusters: []*cluster{{servers: store, synced: func() bool { return synced }}}}
	if _, known := b.Backfills(); known {
		t.Fatal("known before the cache synced")
	}
	synced = true
	got, known := b.Backfills()
	if !known || !reflect.DeepEqual(got, []play.Backfill{asks}) {
		t.Fatalf("Backfills = %+v, %v; want only %+v", got, known, asks)
	}
}
