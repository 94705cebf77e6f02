package kubetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk/sdktest"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/kube"
)

// post sends an allocation to the double as a client of the aggregated
// API would, and returns the HTTP status and body.
func post(t *testing.T, c *Cluster, gsa agones.GameServerAllocation) (int, []byte) {
	t.Helper()
	body, _ := json.Marshal(gsa)
	res, err := http.Post(c.Config.Host+"/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(res.Body)
	return res.StatusCode, out.Bytes()
}

// allocState posts an allocation that must be answered 201 and returns
// its outcome.
func allocState(t *testing.T, c *Cluster, spec agones.GameServerAllocationSpec) string {
	t.Helper()
	status, body := post(t, c, agones.GameServerAllocation{Spec: spec})
	var out agones.GameServerAllocation
	if err := json.Unmarshal(body, &out); err != nil || status != http.StatusCreated {
		t.Fatalf("%d %s %v", status, body, err)
	}
	return out.Status.State
}

// TestDoubleAsAgonesAnswers: one cluster, the cases where the double
// used to answer differently from Agones.
func TestDoubleAsAgonesAnswers(t *testing.T) {
	c := Start(t)
	fleet := func(name string) agones.GameServerAllocationSpec {
		return agones.GameServerAllocationSpec{Selectors: []agones.GameServerSelector{{MatchLabels: map[string]string{"agones.dev/fleet": name}}}}
	}

	// Agones' Validate refuses an annotation key whose name part is over
	// 63 characters (here a 64-character match id) with 422 and a Status,
	// before it looks at any server; so does a bad selector never reached.
	t.Run("invalid request is 422", func(t *testing.T) {
		c.Create(t, "default", GameServer{Name: "gs-valid", Fleet: "valid", RoomsCap: 2, PlayersCap: 4})
		id := strings.Repeat("0123456789abcdef", 4)
		meta, lists := agones.RoomActions(id, agones.Room{Mode: "1v1", Teams: [][]string{{"a"}, {"b"}}})
		long := fleet("valid")
		long.Metadata, long.Lists = meta, lists
		unreached := fleet("valid")
		unreached.Selectors = append(unreached.Selectors, agones.GameServerSelector{Lists: map[string]agones.ListSelector{agones.ListRooms: {MinAvailable: -1}}})
		before := c.Get(t, "default", "gs-valid")
		for name, spec := range map[string]agones.GameServerAllocationSpec{"annotation": long, "unreached selector": unreached} {
			code, body := post(t, c, agones.GameServerAllocation{Spec: spec})
			var st metav1.Status
			if err := json.Unmarshal(body, &st); err != nil || code != http.StatusUnprocessableEntity ||
				st.Kind != "Status" || st.Code != http.StatusUnprocessableEntity || st.Reason != metav1.StatusReasonInvalid || st.Details == nil || len(st.Details.Causes) == 0 {
				t.Fatalf("%s: %d %s %v", name, code, body, err)
			}
		}
		if after := c.Get(t, "default", "gs-valid"); !reflect.DeepEqual(before, after) {
			t.Fatalf("a refused allocation changed the server:\n%+v\n%+v", before, after)
		}
	})

	// Agones retries a failed GameServer update (five attempts, choosing
	// again each time) and then answers UnAllocated, not Contention; the
	// backend takes that as no capacity.
	// The backend takes Agones' 422 as a permanent failure of the match,
	// not of the cluster: it is not retried, and the cluster stays in use
	// (here the fleet name is not a label value Agones accepts).
	t.Run("422 is permanent and the cluster stays healthy", func(t *testing.T) {
		b := backend(t, kube.Config{Mode: kube.HighDensity, FailuresToUnhealthy: 1},
			kube.Cluster{Name: "one", Config: c.Config, Namespace: "default", Fleet: "not a label value!"})
		for i := range 2 {
			calls := c.Calls()
			_, err := b.Allocate(t.Context(), match("m422", "a", "b"))
			if !errors.Is(err, allocator.ErrPermanent) || errors.Is(err, kube.ErrAPI) || c.Calls() != calls+1 {
				t.Fatalf("attempt %d: %v (calls %d -> %d)", i, err, calls, c.Calls())
			}
		}
	})

	t.Run("update fails: UnAllocated", func(t *testing.T) {
		c.Create(t, "default", GameServer{Name: "gs-conflict", Fleet: "conflict", RoomsCap: 2, PlayersCap: 4})
		c.Inject(Fault{Conflicts: allocationAttempts})
		if s := allocState(t, c, fleet("conflict")); s != agones.StateUnAllocated {
			t.Fatalf("every update refused: %s, want UnAllocated", s)
		}
		if g := c.Get(t, "default", "gs-conflict"); g.State != "Ready" {
			t.Fatalf("server %+v after a failed allocation", g)
		}
		c.Inject(Fault{Conflicts: allocationAttempts})
		b := backend(t, kube.Config{Mode: kube.OnePerServer}, kube.Cluster{Name: "one", Config: c.Config, Namespace: "default", Fleet: "conflict"})
		if _, err := b.Allocate(t.Context(), match("m1", "a", "b")); !errors.Is(err, allocator.ErrNoCapacity) {
			t.Fatalf("backend on every update refused: %v, want ErrNoCapacity", err)
		}
		c.Inject(Fault{Conflicts: allocationAttempts - 1})
		if s := allocState(t, c, fleet("conflict")); s != agones.StateAllocated {
			t.Fatalf("the last attempt's update accepted: %s, want Allocated", s)
		}
		g := c.Get(t, "default", "gs-conflict")
		if _, ok := g.Annotations[sdktest.LastAllocatedAnnotation]; g.State != "Allocated" || !ok {
			t.Fatalf("server %+v, want Allocated with %s", g, sdktest.LastAllocatedAnnotation)
		}
	})

	// A list action runs as Agones runs it, and as the fake SDK does
	// (sdktest.ApplyListAction): capacity, addValues, then deleteValues;
	// a delete frees no room for the same action's adds.
	t.Run("list action order", func(t *testing.T) {
		c.Create(t, "default", GameServer{Name: "gs-order", Fleet: "order", RoomsCap: 2, PlayersCap: 2, Players: []string{"a", "b"}})
		spec := fleet("order")
		spec.Lists = map[string]agones.ListAction{
			agones.ListPlayers: {AddValues: []string{"c"}, DeleteValues: []string{"a"}},
			agones.ListRooms:   {AddValues: []string{"m1"}, DeleteValues: []string{"m1"}},
		}
		if s := allocState(t, c, spec); s != agones.StateAllocated {
			t.Fatalf("%s, want Allocated", s)
		}
		if g := c.Get(t, "default", "gs-order"); !slices.Equal(g.Players, []string{"b"}) || len(g.Rooms) != 0 {
			t.Fatalf("players %v rooms %v, want [b] and []", g.Players, g.Rooms)
		}
	})

	// Without selectors Agones takes a Ready server (its defaulted
	// required selector), as the fake does.
	t.Run("no selectors", func(t *testing.T) {
		if s := allocState(t, c, agones.GameServerAllocationSpec{}); s != agones.StateAllocated {
			t.Fatalf("%s, want Allocated (gs-valid is Ready)", s)
		}
	})
}
