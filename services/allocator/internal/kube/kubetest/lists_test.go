package kubetest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/kube"
)

// server is a GameServer as the double reads it, built without an
// apiserver: state, and lists name -> {capacity, values}.
func server(name, state string, lists map[string]agones.ListState) gs {
	obj := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": name}}}
	g := gs{obj: obj, state: state, counters: map[string]agones.CountCap{}, lists: map[string]agones.ListState{}}
	for k, l := range lists {
		g.lists[k] = l
	}
	return g
}

// TestDoubleListSelectors: the double's list selectors are Agones'
// (GameServerSelector.matchLists): available room is capacity minus the
// values, 0 for a maximum is no maximum, a value must be in the list, and
// a list the server does not have never matches.
func TestDoubleListSelectors(t *testing.T) {
	t.Parallel()
	g := server("gs", "Ready", map[string]agones.ListState{"players": {Capacity: 4, Values: []string{"a", "b", "c"}}})
	for _, tt := range []struct {
		name string
		sel  agones.ListSelector
		list string
		want bool
	}{
		{"no bounds", agones.ListSelector{}, "players", true},
		{"room for one", agones.ListSelector{MinAvailable: 1}, "players", true},
		{"no room for two", agones.ListSelector{MinAvailable: 2}, "players", false},
		{"at most one free", agones.ListSelector{MaxAvailable: 1}, "players", true},
		{"more free than zero", agones.ListSelector{MinAvailable: 0, MaxAvailable: 0}, "players", true},
		{"contains", agones.ListSelector{ContainsValue: "b"}, "players", true},
		{"does not contain", agones.ListSelector{ContainsValue: "z"}, "players", false},
		{"a list it does not have", agones.ListSelector{}, "rooms", false},
	} {
		sel := agones.GameServerSelector{Lists: map[string]agones.ListSelector{tt.list: tt.sel}}
		if got := g.matches(sel); got != tt.want {
			t.Errorf("%s: matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestDoubleListPriority: Agones' Packed order with a List priority:
// Allocated first, then the least room first (Ascending) or the most
// (Descending), a server without the list last in both, then by name.
func TestDoubleListPriority(t *testing.T) {
	t.Parallel()
	rooms := func(capacity int64, values ...string) map[string]agones.ListState {
		return map[string]agones.ListState{"rooms": {Capacity: capacity, Values: values}}
	}
	all := []gs{
		server("ready-empty", "Ready", rooms(4)),
		server("alloc-none", "Allocated", nil),
		server("alloc-3free", "Allocated", rooms(4, "m1")),
		server("alloc-1free", "Allocated", rooms(4, "m1", "m2", "m3")),
		server("alloc-1free-b", "Allocated", rooms(2, "m4")),
	}
	for _, tt := range []struct {
		order string
		want  []string
	}{
		{"Ascending", []string{"alloc-1free", "alloc-1free-b", "alloc-3free", "alloc-none", "ready-empty"}},
		{"Descending", []string{"alloc-3free", "alloc-1free", "alloc-1free-b", "alloc-none", "ready-empty"}},
	} {
		sorted := slices.Clone(all)
		p := []agones.Priority{{Type: "List", Key: "rooms", Order: tt.order}}
		sort.SliceStable(sorted, func(i, j int) bool { return before(sorted[i], sorted[j], p) })
		var names []string
		for _, g := range sorted {
			names = append(names, g.obj.GetName())
		}
		if !slices.Equal(names, tt.want) {
			t.Errorf("%s: %v, want %v", tt.order, names, tt.want)
		}
	}
}

// TestDoubleTruncatesWithoutASelector: an allocation whose selector does
// not ask for list room picks a server whose players list is nearly full
// and cuts the added players at the capacity, with no error, as Agones
// does.
func TestDoubleTruncatesWithoutASelector(t *testing.T) {
	c := Start(t)
	c.Create(t, "default", GameServer{Name: "gs-1", Fleet: "rps", RoomsCap: 4, PlayersCap: 3, Players: []string{"a", "b"}})
	gsa := agones.GameServerAllocation{
		Spec: agones.GameServerAllocationSpec{
			Scheduling: "Packed",
			Selectors:  []agones.GameServerSelector{{MatchLabels: map[string]string{"agones.dev/fleet": "rps"}}},
			Lists:      map[string]agones.ListAction{agones.ListPlayers: {AddValues: []string{"b", "c", "d"}}},
		},
	}
	body, _ := json.Marshal(gsa)
	res, err := http.Post(c.Config.Host+"/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out agones.GameServerAllocation
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusCreated || out.Status.State != agones.StateAllocated {
		t.Fatalf("%s %+v %v", res.Status, out.Status, err)
	}
	// "b" is there already (dropped), "c" fills the list, "d" is cut.
	if g := c.Get(t, "default", "gs-1"); !slices.Equal(g.Players, []string{"a", "b", "c"}) {
		t.Fatalf("players %v, want [a b c]", g.Players)
	}
}

// TestFullPlayersListNeverChosen: an Allocated server with a free room
// but too few free seats for the match is passed over for a Ready one
// (before, its rooms were free and its players list silently cut).
func TestFullPlayersListNeverChosen(t *testing.T) {
	c := Start(t)
	c.Create(t, "default", GameServer{Name: "gs-full", Fleet: "rps", State: "Allocated",
		Rooms: []string{"m0"}, RoomsCap: 4, Players: []string{"p1", "p2", "p3"}, PlayersCap: 4})
	c.Create(t, "default", GameServer{Name: "gs-ready", Fleet: "rps", RoomsCap: 4, PlayersCap: 8})
	b := backend(t, kube.Config{Mode: kube.HighDensity}, kube.Cluster{Name: "one", Config: c.Config, Namespace: "default", Fleet: "rps"})
	srv, err := b.Allocate(t.Context(), match("m1", "a", "b"))
	if err != nil || srv.Name != "gs-ready" {
		t.Fatalf("allocated %+v %v, want gs-ready", srv, err)
	}
	if g := c.Get(t, "default", "gs-full"); !slices.Equal(g.Players, []string{"p1", "p2", "p3"}) || !slices.Equal(g.Rooms, []string{"m0"}) {
		t.Fatalf("gs-full changed: %+v", g)
	}
	if g := c.Get(t, "default", "gs-ready"); !slices.Equal(g.Rooms, []string{"m1"}) || !slices.Equal(g.Players, []string{"a", "b"}) {
		t.Fatalf("gs-ready: %+v", g)
	}
	// gs-full is still the fullest Allocated server by rooms, and still
	// has a seat too few.
	if srv, err := b.Allocate(t.Context(), match("m2", "c", "d")); err != nil || srv.Name != "gs-ready" {
		t.Fatalf("second match on %+v %v, want gs-ready", srv, err)
	}
}

// TestRetiringServerNeverChosen: a game server that labelled itself
// retiring (its allocation annotations near the limit Kubernetes puts on
// an object) gets no more rooms, though it has free ones and is the
// fullest.
func TestRetiringServerNeverChosen(t *testing.T) {
	c := Start(t)
	for _, mode := range []kube.Mode{kube.HighDensity, kube.LabelLocking, kube.OnePerServer} {
		fleet := "rps-" + string(mode)
		c.Create(t, "default", GameServer{Name: "retiring-" + string(mode), Fleet: fleet, State: "Allocated",
			Labels: map[string]string{agones.RetiringLabel: "true", kube.LabelMode: "1v1"}, Rooms: []string{"m0"}, RoomsCap: 4, Players: []string{"p1", "p2"}, PlayersCap: 8})
		c.Create(t, "default", GameServer{Name: "ready-" + string(mode), Fleet: fleet, RoomsCap: 4, PlayersCap: 8})
		b := backend(t, kube.Config{Mode: mode}, kube.Cluster{Name: "one", Config: c.Config, Namespace: "default", Fleet: fleet})
		srv, err := b.Allocate(t.Context(), match("m-"+string(mode), "a", "b"))
		if err != nil || srv.Name != "ready-"+string(mode) {
			t.Fatalf("%s: allocated %+v %v, want ready-%s", mode, srv, err, mode)
		}
		if g := c.Get(t, "default", "retiring-"+string(mode)); !slices.Equal(g.Rooms, []string{"m0"}) {
			t.Fatalf("%s: the retiring server got a room: %+v", mode, g)
		}
	}
}
