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
// a request, with the GameServer's name and its cluster's as the
// server that shows it. Agones never removes an annotation, so the rooms
// List, not the annotation, says whether the room is there; a room that
// asks for no one any more set its annotation to "". known is false
// until every cluster's cache has synced.
//
// A game server writes both its annotations and its rooms List through
// the SDK: what they say is its word, checked by the allocator against
// the room's allocation record. The List bounds its requests to one per
// room it lists, at most allocator.MaxRoomsShown.
//
// Each shows no one seated (ShownBackfill.Seated), so a promise holds its
// seat until it ends: the players List may not say who is seated in step
// with the request. The SDK sidecar queues an annotation and a List
// change as two GameServer updates, each retried on its own after a
// conflict, so the List can show an admitted player while the request
// still counts their seat free; releasing the promise then would promise
// that seat twice. (The local backend's /status shows both in one
// answer, and releases promises early.)
func (b *Backend) Backfills() ([]allocator.ShownBackfill, bool) {
	var out []allocator.ShownBackfill
	known := b.eachServer(func(u *unstructured.Unstructured, srv allocator.Server) {
		for _, r := range roomRequests(u) {
			out = append(out, allocator.ShownBackfill{Backfill: r, Server: srv})
		}
	})
	return out, known
}

// Rooms are the rooms live on the clusters' Allocated GameServers (their
// rooms Lists, liveRooms), each with its server; known as for Backfills.
func (b *Backend) Rooms() ([]allocator.ShownRoom, bool) {
	var out []allocator.ShownRoom
	known := b.eachServer(func(u *unstructured.Unstructured, srv allocator.Server) {
		for _, id := range liveRooms(u) {
			out = append(out, allocator.ShownRoom{MatchID: id, Server: srv})
		}
	})
	return out, known
}

// eachServer calls f with every GameServer in the informers' caches and
// the server it is; known is false until every cluster's cache synced.
func (b *Backend) eachServer(f func(u *unstructured.Unstructured, srv allocator.Server)) bool {
	known := true
	for _, c := range b.clusters {
		servers, ok := c.servers()
		if !ok {
			known = false
			continue
		}
		for _, o := range servers {
			if u, ok := o.(*unstructured.Unstructured); ok {
				f(u, allocator.Server{Name: u.GetName(), Cluster: c.Name})
			}
		}
	}
	return known
}

// roomRequests are the requests of the live rooms of GameServer u, one
// per room however often the List names it, at most
// allocator.MaxRoomsShown (Agones caps the List's capacity there; this
// holds whatever the cache was given). An annotation that does not
// read, or names another room, is passed over: it asks for nothing the
// allocator could serve; so are the rooms of a server that is not
// Allocated.
func roomRequests(u *unstructured.Unstructured) []play.Backfill {
	ann := u.GetAnnotations()
	var out []play.Backfill
	for _, id := range liveRooms(u) {
		b, ok, err := agones.DecodeBackfill(ann[agones.BackfillAnnotation(id)])
		if err != nil || !ok || b.MatchID != id {
			continue
		}
		out = append(out, b)
	}
	return out
}

// serving says whether players may be sent to GameServer u's rooms:
// rooms live on an Allocated server; one Unhealthy, shutting down or
// being deleted is going away with them.
func serving(u *unstructured.Unstructured) bool {
	state, _, _ := unstructured.NestedString(u.Object, "status", "state")
	return state == agones.StateAllocated && u.GetDeletionTimestamp() == nil
}

// liveRooms are the rooms GameServer u lists (agones.ListRooms), each
// once, at most allocator.MaxRoomsShown; none unless it is Allocated.
func liveRooms(u *unstructured.Unstructured) []string {
	if !serving(u) {
		return nil
	}
	listed, _, _ := unstructured.NestedStringSlice(u.Object, "status", "lists", agones.ListRooms, "values")
	var out []string
	seen := map[string]bool{}
	for _, id := range listed {
		if len(out) >= allocator.MaxRoomsShown {
			break
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
