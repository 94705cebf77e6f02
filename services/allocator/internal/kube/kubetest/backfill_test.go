package kubetest

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/kube"
)

// sdkUpdate changes GameServer name as the game server does through the
// SDK: the SDK server reads the GameServer, changes it and writes it back
// whole (the CRD has no status subresource).
func (c *Cluster) sdkUpdate(t *testing.T, ns, name string, change func(u *unstructured.Unstructured)) {
	t.Helper()
	api := c.Dyn.Resource(GameServers).Namespace(ns)
	u, err := api.Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	change(u)
	if _, err := api.Update(context.Background(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update GameServer %s: %v", name, err)
	}
}

// setBackfill sets the backfill annotation of match id's room on
// GameServer name to v, as SetAnnotation(agones.BackfillKey(id), v) does.
func (c *Cluster) setBackfill(t *testing.T, name, id, v string) {
	t.Helper()
	c.sdkUpdate(t, "default", name, func(u *unstructured.Unstructured) {
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[agones.BackfillAnnotation(id)] = v
		u.SetAnnotations(ann)
	})
}

// shown is what Backfills said last, for a failure message.
type shown struct {
	Got   []allocator.ShownBackfill
	Known bool
}

// waitBackfills waits until b's Backfills are want (in any order) and
// known: the informer follows the apiserver's watch events.
func waitBackfills(t *testing.T, b *kube.Backend, want []allocator.ShownBackfill, why string) {
	t.Helper()
	var last shown
	testkit.Eventually(t, 15*time.Second, func() bool {
		last.Got, last.Known = b.Backfills()
		got := slices.Clone(last.Got)
		slices.SortFunc(got, func(x, y allocator.ShownBackfill) int { return strings.Compare(x.MatchID, y.MatchID) })
		return last.Known && len(got) == len(want) && (len(want) == 0 || reflect.DeepEqual(got, want))
	}, "%s: Backfills = %+v, want %+v", why, &last, want)
}

// TestBackfillsFromGameServers: the backend reads backfill requests from
// the real GameServers its informer watches. A room allocated early (a
// free seat on team 3) asks for a player as its game server would,
// through the SDK's annotation, and Backfills shows it with the
// GameServer and the cluster that show it. Another server's annotations
// naming rooms it does not list (one that ended there, whose annotation
// Agones never removes, and the first server's room) ask for nothing, nor
// does a server of another fleet. Set to "" the request is gone; asked
// again, it is back; gone while its server is not Allocated (a server
// going away takes no players), and gone again once the room leaves the
// rooms List with its annotation still there.
func TestBackfillsFromGameServers(t *testing.T) {
	c := Start(t)
	c.Create(t, "default", GameServer{Name: "gs-live", Fleet: "rps", RoomsCap: 2, PlayersCap: 8})
	// Full (one room of one), so the allocation takes gs-live.
	c.Create(t, "default", GameServer{Name: "gs-other", Fleet: "rps", State: agones.StateAllocated, RoomsCap: 1, PlayersCap: 4,
		Rooms: []string{"m-other"}, Players: []string{"x", "y"}})
	c.Create(t, "default", GameServer{Name: "gs-foreign", Fleet: "another", State: agones.StateAllocated, RoomsCap: 2, PlayersCap: 8,
		Rooms: []string{"m-foreign"}, Players: []string{"v", "w"}})
	b := backend(t, kube.Config{Mode: kube.HighDensity}, kube.Cluster{Name: "eu-1", Config: c.Config, Namespace: "default", Fleet: "rps", Region: "eu"})
	if _, known := b.Backfills(); known {
		t.Fatal("known before the informers synced")
	}
	// The longest id the allocator takes: both of its annotation keys
	// must pass the apiserver's validation.
	id := strings.Repeat("m", agones.MaxMatchIDLen)
	// The allocation record names this server; the allocator serves a
	// request only from the server its record names (Name and Cluster).
	if srv, err := b.Allocate(t.Context(), earlyMatch(id, "a", "b", "c")); err != nil || srv.Name != "gs-live" || srv.Cluster != "eu-1" {
		t.Fatalf("allocated %+v %v, want gs-live in eu-1", srv, err)
	}
	// The allocator polls Backfills and Capacity while Watch starts the
	// informers (main runs them side by side): under -race, a cache
	// handed over without a barrier fails here.
	watched := make(chan error, 1)
	go func() { watched <- b.Watch(t.Context()) }()
	testkit.Eventually(t, 15*time.Second, func() bool {
		_, known := b.Backfills()
		_, capKnown := b.Capacity("eu")
		return known && capKnown
	}, "the informers never synced")
	if err := <-watched; err != nil {
		t.Fatal(err)
	}
	waitBackfills(t, b, nil, "no annotation yet")

	// gs-other's and gs-foreign's annotations are written first: the
	// watch delivers events in order, so once gs-live's request shows,
	// they have been seen too.
	c.setBackfill(t, "gs-other", "m-ended", agones.EncodeBackfill(play.Backfill{MatchID: "m-ended", Ask: 1, Seats: []int{1, 0}}))
	c.setBackfill(t, "gs-other", id, agones.EncodeBackfill(play.Backfill{MatchID: id, Ask: 1, Seats: []int{0, 0, 0, 1}}))
	c.setBackfill(t, "gs-foreign", "m-foreign", agones.EncodeBackfill(play.Backfill{MatchID: "m-foreign", Ask: 1, Seats: []int{1, 0}}))
	ask := play.Backfill{MatchID: id, Ask: 1, Seats: []int{0, 0, 0, 1}}
	c.setBackfill(t, "gs-live", id, agones.EncodeBackfill(ask))
	live := allocator.Server{Name: "gs-live", Cluster: "eu-1"}
	waitBackfills(t, b, []allocator.ShownBackfill{{Backfill: ask, Server: live}}, "the live room asks")

	c.setBackfill(t, "gs-live", id, "")
	waitBackfills(t, b, nil, `set to ""`)

	again := play.Backfill{MatchID: id, Ask: 2, Seats: []int{0, 0, 0, 1}}
	c.setBackfill(t, "gs-live", id, agones.EncodeBackfill(again))
	waitBackfills(t, b, []allocator.ShownBackfill{{Backfill: again, Server: live}}, "asked again")

	// A server that is not Allocated (Unhealthy, Shutdown) is going away:
	// no player is sent to its rooms.
	setState := func(state string) {
		c.sdkUpdate(t, "default", "gs-live", func(u *unstructured.Unstructured) {
			if err := unstructured.SetNestedField(u.Object, state, "status", "state"); err != nil {
				t.Fatal(err)
			}
		})
	}
	setState("Unhealthy")
	waitBackfills(t, b, nil, "its server is unhealthy")
	setState(agones.StateAllocated)
	waitBackfills(t, b, []allocator.ShownBackfill{{Backfill: again, Server: live}}, "its server is allocated again")

	// The room ends: the game server takes it off the rooms List; its
	// annotation stays.
	c.sdkUpdate(t, "default", "gs-live", func(u *unstructured.Unstructured) {
		if err := unstructured.SetNestedStringSlice(u.Object, []string{}, "status", "lists", agones.ListRooms, "values"); err != nil {
			t.Fatal(err)
		}
	})
	waitBackfills(t, b, nil, "the room ended")
	if g := c.Get(t, "default", "gs-live"); g.Annotations[agones.BackfillAnnotation(id)] != agones.EncodeBackfill(again) || len(g.Rooms) != 0 {
		t.Fatalf("gs-live %+v: want no room and the request still annotated", g)
	}
}
