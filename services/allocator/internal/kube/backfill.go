package kube

import (
	"slices"
	"sync"

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
//
// A server's requests are decoded once per resourceVersion of its
// GameServer (decoded): each poll reads them all, and a server may show
// a thousand.
func (b *Backend) Backfills() ([]allocator.ShownBackfill, bool) {
	b.decoded.mu.Lock()
	defer b.decoded.mu.Unlock()
	next := make(map[serverKey]decodedRequests, len(b.decoded.of))
	var shown [][]allocator.ShownBackfill
	n := 0
	known := b.eachServer(func(u *unstructured.Unstructured, srv allocator.Server) {
		k := serverKey{srv.Cluster, u.GetNamespace(), u.GetName()}
		d, ok := b.decoded.of[k]
		if v := u.GetResourceVersion(); !ok || v == "" || d.version != v {
			d = decodedRequests{version: v}
			for _, r := range roomRequests(u) {
				d.shown = append(d.shown, allocator.ShownBackfill{Backfill: r, Server: srv})
			}
		}
		next[k] = d
		shown, n = append(shown, d.shown), n+len(d.shown)
	})
	b.decoded.of = next // the servers gone are forgotten
	out := make([]allocator.ShownBackfill, 0, n)
	for _, s := range shown {
		out = append(out, s...)
	}
	return out, known
}

// decoded keeps each GameServer's requests (roomRequests) as of its
// resourceVersion, which changes with any change of the object; only
// Backfills, which reads every server, uses it. Its requests are read,
// never written, by Backfills' callers.
type decoded struct {
	mu sync.Mutex
	of map[serverKey]decodedRequests
}

type serverKey struct{ cluster, namespace, name string }

// decodedRequests are a server's requests as shown (its name and
// cluster are its key's) at resourceVersion version.
type decodedRequests struct {
	version string
	shown   []allocator.ShownBackfill
}

// RoomBackfills are the requests for room roomID, as Backfills shows
// them, of each server whose rooms List names it (the informers' room
// index): only that room's annotation is decoded.
func (b *Backend) RoomBackfills(roomID string) ([]allocator.ShownBackfill, bool) {
	var out []allocator.ShownBackfill
	known := true
	for _, c := range b.clusters {
		idx, ok := c.cache()
		if !ok {
			known = false
			continue
		}
		found, _ := idx.ByIndex(roomIndex, roomID)
		for _, o := range found {
			u, ok := o.(*unstructured.Unstructured)
			if !ok || !listsLive(u, roomID) {
				continue
			}
			// The one annotation, not a copy of them all.
			ann, _, _ := unstructured.NestedString(u.Object, "metadata", "annotations", agones.BackfillAnnotation(roomID))
			if r, ok := roomRequest(ann, roomID); ok {
				out = append(out, allocator.ShownBackfill{Backfill: r, Server: allocator.Server{Name: u.GetName(), Cluster: c.Name}})
			}
		}
	}
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
	ann := u.GetAnnotations() // a copy: once for every room
	var out []play.Backfill
	for _, id := range liveRooms(u) {
		if b, ok := roomRequest(ann[agones.BackfillAnnotation(id)], id); ok {
			out = append(out, b)
		}
	}
	return out
}

// roomRequest is the request ann, room id's backfill annotation on its
// GameServer, holds, if it holds one that reads and names the room.
func roomRequest(ann string, id string) (play.Backfill, bool) {
	b, ok, err := agones.DecodeBackfill(ann)
	return b, err == nil && ok && b.MatchID == id
}

// serving says whether players may be sent to GameServer u's rooms:
// rooms live on an Allocated server; one Unhealthy, shutting down or
// being deleted is going away with them.
func serving(u *unstructured.Unstructured) bool {
	state, _, _ := unstructured.NestedString(u.Object, "status", "state")
	return state == agones.StateAllocated && u.GetDeletionTimestamp() == nil
}

// listsLive says whether room id is among GameServer u's liveRooms,
// without building them when it is listed within the first
// allocator.MaxRoomsShown (its place among them is no later).
func listsLive(u *unstructured.Unstructured, id string) bool {
	if !serving(u) {
		return false
	}
	listed, _, _ := unstructured.NestedStringSlice(u.Object, "status", "lists", agones.ListRooms, "values")
	switch i := slices.Index(listed, id); {
	case i < 0:
		return false
	case i < allocator.MaxRoomsShown:
		return true
	}
	return slices.Contains(liveRooms(u), id)
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
