package kube

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
)

// TestTheCacheKeepsTheListedRoomsAnnotations: the informer keeps of a
// GameServer the annotations of the rooms its List holds, nothing of the
// rooms it ended (Agones keeps their annotations for good) nor of what
// the game writes for itself, and no managed fields: a server reused for
// hours was cached whole, up to about 200 KB.
func TestTheCacheKeepsTheListedRoomsAnnotations(t *testing.T) {
	t.Parallel()
	ann := map[string]any{
		agones.MatchAnnotationPrefix + "live": `{"mode":"2v2"}`, agones.BackfillAnnotation("live"): `{"ask":1}`,
		agones.MatchAnnotationPrefix + "ended": `{"mode":"2v2"}`, agones.BackfillAnnotation("ended"): `{"ask":3}`,
		agones.SeatsAnnotation("live"): strings.Repeat("x", 4096), "agones.dev/ready-container-id": "c1",
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": "gs-1", "annotations": ann, "managedFields": []any{map[string]any{"manager": "agones"}},
			"labels": map[string]any{"agones.dev/fleet": "rps"}},
		"status": map[string]any{"state": "Allocated", "lists": map[string]any{agones.ListRooms: map[string]any{"values": []any{"live"}}}},
	}}
	out, err := slim(u)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*unstructured.Unstructured)
	keys := slices.Sorted(maps.Keys(got.GetAnnotations()))
	want := slices.Sorted(slices.Values([]string{agones.MatchAnnotationPrefix + "live", agones.BackfillAnnotation("live")}))
	if !slices.Equal(keys, want) {
		t.Fatalf("annotations kept %v, want %v", keys, want)
	}
	if got.GetManagedFields() != nil || got.GetLabels()["agones.dev/fleet"] != "rps" || got.GetName() != "gs-1" {
		t.Fatalf("slimmed %v", got.Object["metadata"])
	}
	if _, err := slim("a tombstone"); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkSlim: a server reused for hours, 10 live rooms of 200 it
// held, each ended room's match annotation and the game's seats and
// backfill annotations kept by Agones, and managed fields: the bytes of
// its JSON as Agones sends it and as the cache keeps it.
func BenchmarkSlim(b *testing.B) {
	server := func() *unstructured.Unstructured {
		ann := map[string]any{}
		var live []any
		for i := range 200 {
			room := fmt.Sprintf("m%024d", i)
			ann[agones.MatchAnnotationPrefix+room] = `{"mode":"5v5","teams":[["a","b","c","d","e"],["f","g","h","i","j"]]}`
			ann[agones.BackfillAnnotation(room)] = `{"ask":3,"seats":[1,0]}`
			ann[agones.SeatsAnnotation(room)] = strings.Repeat("p", 600)
			if i >= 190 {
				live = append(live, room)
			}
		}
		return &unstructured.Unstructured{Object: map[string]any{
			"metadata": map[string]any{"name": "gs-1", "annotations": ann, "managedFields": []any{map[string]any{"manager": "agones", "fieldsV1": strings.Repeat("f", 6000)}}},
			"status":   map[string]any{"state": "Allocated", "lists": map[string]any{agones.ListRooms: map[string]any{"values": live}}},
		}}
	}
	before, _ := json.Marshal(server().Object)
	var after []byte
	for b.Loop() {
		out, _ := slim(server())
		after, _ = json.Marshal(out.(*unstructured.Unstructured).Object)
	}
	b.ReportMetric(float64(len(before)), "bytes-sent")
	b.ReportMetric(float64(len(after)), "bytes-cached")
}
