package kube

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
)

// slim is the informer's transform: a GameServer as the cache keeps it,
// without its managed fields and with the annotations of the rooms in its
// rooms List alone (each room's match and backfill annotations, all that
// is read of them: found.go, backfill.go). Agones never removes an
// annotation, and a game server writes its own per room (seats, let-go
// players, requests): a server reused for hours carries up to 192 KiB of
// them (the game's retiring bound), and every allocator replica cached
// each such server whole, about 200 KB, some 200 MB per 1,000.
// The rooms List is the truth of which rooms are live (an allocation adds
// a room's id and its annotation in one update), so a room's annotations
// are cached as long as it is listed.
func slim(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil // a tombstone: its object was slimmed when stored
	}
	meta, ok := u.Object["metadata"].(map[string]any)
	if !ok {
		return obj, nil
	}
	delete(meta, "managedFields")
	ann, _ := meta["annotations"].(map[string]any)
	if len(ann) == 0 {
		return u, nil
	}
	rooms, _, _ := unstructured.NestedStringSlice(u.Object, "status", "lists", agones.ListRooms, "values")
	kept := make(map[string]any, 2*len(rooms))
	for _, room := range rooms {
		for _, k := range []string{agones.MatchAnnotationPrefix + room, agones.BackfillAnnotation(room)} {
			if v, ok := ann[k]; ok {
				kept[k] = v
			}
		}
	}
	if len(kept) == 0 {
		delete(meta, "annotations")
	} else {
		meta["annotations"] = kept
	}
	return u, nil
}
