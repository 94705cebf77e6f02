package kube

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
)

var _ allocator.BackfillSource = (*Backend)(nil)

// Backfills are the requests of the rooms live on the clusters'
// GameServers, from the informers' caches (Watch): a room in a server's
// rooms List whose backfill annotation (agones.BackfillAnnotation) holds
// a request. Agones never removes an annotation, so the rooms List, not
// the annotation, says whether the room is there; a room that asks for
// no one any more set its annotation to "". known is false until every
// cluster's cache has synced.
func (b *Backend) Backfills() ([]play.Backfill, bool) {
	var out []play.Backfill
	known := true
	for _, c := range b.clusters {
		if c.synced == nil || !c.synced() {
			known = false
			continue
		}
		for _, o := range c.servers.List() {
			if u, ok := o.(*unstructured.Unstructured); ok {
				out = append(out, roomRequests(u)...)
			}
		}
	}
	return out, known
}

// roomRequests are the requests of the live rooms of GameServer u. An
// annotation that does not read, or names another room, is passed over:
// it asks for nothing the allocator could serve.
func roomRequests(u *unstructured.Unstructured) []play.Backfill {
	live, _, _ := unstructured.NestedStringSlice(u.Object, "status", "lists", agones.ListRooms, "values")
	ann := u.GetAnnotations()
	var out []play.Backfill
	for _, id := range live {
		b, ok, err := agones.DecodeBackfill(ann[agones.BackfillAnnotation(id)])
		if err != nil || !ok || b.MatchID != id {
			continue
		}
		out = append(out, b)
	}
	return out
}
