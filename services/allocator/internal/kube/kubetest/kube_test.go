package kubetest

import (
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/kube"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func backend(t *testing.T, cfg kube.Config, clusters ...kube.Cluster) *kube.Backend {
	t.Helper()
	b, err := kube.New(cfg, clusters, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func match(id string, players ...string) events.Match {
	m := events.Match{SchemaVersion: events.SchemaVersion, MatchID: id, Mode: "1v1", Region: "eu", Tier: "gold"}
	for i, p := range players {
		m.Tickets = append(m.Tickets, events.MatchTicket{TicketID: "t-" + p, Players: []string{p}, Team: i})
	}
	return m
}

// TestHighDensityFillsRoomsAcrossServers: two Ready servers of two rooms
// each. Packed high density fills the first (Allocated with a free room
// is tried before Ready), then the second, then there is no room.
func TestHighDensityFillsRoomsAcrossServers(t *testing.T) {
	c := Start(t)
	for _, name := range []string{"gs-a", "gs-b"} {
		c.Create(t, "default", GameServer{Name: name, Fleet: "rps", RoomsCap: 2, PlayersCap: 4})
	}
	b := backend(t, kube.Config{Mode: kube.HighDensity}, kube.Cluster{Name: "one", Config: c.Config, Namespace: "default", Fleet: "rps"})
	var got []string
	for i := range 4 {
		srv, err := b.Allocate(t.Context(), match("m"+string(rune('1'+i)), "p"+string(rune('a'+2*i)), "p"+string(rune('b'+2*i))))
		if err != nil {
			t.Fatalf("match %d: %v", i+1, err)
		}
		got = append(got, srv.Name)
	}
	if strings.Join(got, ",") != "gs-a,gs-a,gs-b,gs-b" {
		t.Fatalf("servers %v, want gs-a twice then gs-b twice", got)
	}
	g := c.Get(t, "default", "gs-a")
	room, err := agones.DecodeRoom(g.Annotations[agones.MatchAnnotationPrefix+"m1"])
	if g.State != "Allocated" || !slices.Equal(g.Rooms, []string{"m1", "m2"}) || !slices.Equal(g.Players, []string{"pa", "pb", "pc", "pd"}) ||
		err != nil || !reflect.DeepEqual(room, agones.Room{Mode: "1v1", Teams: [][]string{{"pa"}, {"pb"}}}) {
		t.Fatalf("gs-a: %+v; room %+v %v", g, room, err)
	}
	if _, err := b.Allocate(t.Context(), match("m5", "x", "y")); !errors.Is(err, allocator.ErrNoCapacity) {
		t.Fatalf("fifth match on four rooms: %v", err)
	}
}

func TestUnAllocatedThenScaleUp(t *testing.T) {
	c := Start(t)
	b := backend(t, kube.Config{Mode: kube.OnePerServer}, kube.Cluster{Name: "one", Config: c.Config, Namespace: "default", Fleet: "rps"})
	if _, err := b.Allocate(t.Context(), match("m1", "a", "b")); !errors.Is(err, allocator.ErrNoCapacity) {
		t.Fatalf("empty fleet: %v", err)
	}
	c.Create(t, "default", GameServer{Name: "gs-new", Fleet: "rps", RoomsCap: 1, PlayersCap: 2}) // the fleet scaled up
	srv, err := b.Allocate(t.Context(), match("m1", "a", "b"))
	if err != nil || srv.Name != "gs-new" || srv.Port != 7000 || srv.Address == "" {
		t.Fatalf("after scale-up: %+v %v", srv, err)
	}
}

// TestAPIFaultsAreErrorsAndMarkTheClusterUnhealthy: 429, 503, 500 and a
// timeout each fail one call with a retryable error; three failures in a
// row rule the cluster out for the cool-down, a 429 (the API server's
// priority and fairness: busy, not failing) not counted among them;
// afterwards it allocates again.
func TestAPIFaultsAreErrorsAndMarkTheClusterUnhealthy(t *testing.T) {
	c := Start(t)
	c.Create(t, "default", GameServer{Name: "gs-1", Fleet: "rps", RoomsCap: 4, PlayersCap: 8})
	// Settle short: the cool-down is timed from the third failure. The
	// call's Timeout is what the allocation after the cool-down, a real
	// one (a list and an update on the apiserver), has: 300 ms was close
	// on a loaded machine. The delayed fault outlasts it.
	b := backend(t, kube.Config{Mode: kube.HighDensity, Timeout: 2 * time.Second, Settle: time.Millisecond, FailuresToUnhealthy: 3, Cooldown: 500 * time.Millisecond},
		kube.Cluster{Name: "one", Config: c.Config, Namespace: "default", Fleet: "rps"})
	c.Inject(Fault{Status: http.StatusTooManyRequests}, Fault{Status: http.StatusServiceUnavailable}, Fault{Status: http.StatusInternalServerError}, Fault{Delay: time.Minute})
	for i, want := range []string{"429", "503", "500", "Timeout"} {
		_, err := b.Allocate(t.Context(), match("m1", "a", "b"))
		if !errors.Is(err, kube.ErrAPI) || !strings.Contains(err.Error(), want) {
			t.Fatalf("fault %d: %v, want an API error with %q", i, err, want)
		}
	}
	calls := c.Calls()
	if _, err := b.Allocate(t.Context(), match("m1", "a", "b")); err == nil || !strings.Contains(err.Error(), "unhealthy") || c.Calls() != calls {
		t.Fatalf("unhealthy cluster was called: %v", err)
	}
	time.Sleep(600 * time.Millisecond)
	if srv, err := b.Allocate(t.Context(), match("m1", "a", "b")); err != nil || srv.Name != "gs-1" {
		t.Fatalf("after the cool-down: %+v %v", srv, err)
	}
}

// TestSpilloverToSecondCluster: the preferred cluster has no room; the
// match goes to the next by priority.
func TestSpilloverToSecondCluster(t *testing.T) {
	first, second := Start(t), Start(t)
	second.Create(t, "default", GameServer{Name: "gs-far", Fleet: "rps", RoomsCap: 2, PlayersCap: 4})
	b := backend(t, kube.Config{Mode: kube.HighDensity},
		kube.Cluster{Name: "near", Config: first.Config, Namespace: "default", Fleet: "rps", Priority: 0},
		kube.Cluster{Name: "far", Config: second.Config, Namespace: "default", Fleet: "rps", Priority: 1})
	srv, err := b.Allocate(t.Context(), match("m1", "a", "b"))
	if err != nil || srv.Cluster != "far" || srv.Name != "gs-far" {
		t.Fatalf("spillover: %+v %v", srv, err)
	}
	if first.Calls() != 1 || second.Calls() != 1 {
		t.Fatalf("calls near=%d far=%d", first.Calls(), second.Calls())
	}
}

// TestDuplicateRequestYieldsOneAllocation runs the allocator itself over
// NATS with this backend: the same match requested twice (a redelivery
// past the duplicate window) allocates one game server.
func TestDuplicateRequestYieldsOneAllocation(t *testing.T) {
	c := Start(t)
	c.Create(t, "default", GameServer{Name: "gs-1", Fleet: "rps", RoomsCap: 4, PlayersCap: 8})
	b := backend(t, kube.Config{Mode: kube.HighDensity}, kube.Cluster{Name: "one", Config: c.Config, Namespace: "default", Fleet: "rps"})
	s := testkit.RunServer(t)
	nc := testkit.Connect(t, s)
	js := testkit.JetStream(t, nc)
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	a, err := allocator.New(allocator.Config{JoinKey: ed25519.NewKeyFromSeed([]byte("kube-test-join-key-0123456789abc"))}, nc, js, subj, b, quiet)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, a.Run)
	res := testkit.Collect(t, nc, subj.Result("alice"))
	dls := testkit.Collect(t, nc, subj.AllDeadLetters())
	m := match("m-dup", "alice", "bob")
	for _, id := range []string{"first", "again"} {
		msg, err := events.NewMsg(t.Context(), subj.Allocation("eu"), id, m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		return len(res()) >= 1 && testkit.StreamMsgs(t, js, subj.AllocationsStream()) == 0
	}, "requests not handled")
	if n := c.Calls(); n != 1 || len(dls()) != 0 || len(res()) != 2 {
		t.Fatalf("%d allocation calls, %d dead letters, %d results for one match requested twice", n, len(dls()), len(res()))
	}
	if g := c.Get(t, "default", "gs-1"); !slices.Equal(g.Rooms, []string{"m-dup"}) || len(g.Players) != 2 {
		t.Fatalf("gs-1 %+v", g)
	}
	r, _ := events.DecodeResult(res()[0].Data)
	if r.Status != events.StatusAssigned || r.Assignment.Server != "gs-1" {
		t.Fatalf("result %+v", r)
	}
}

// TestCapacityFromInformers: the backend's informers see the fleet's
// GameServers; free rooms fall as matches are allocated.
func TestCapacityFromInformers(t *testing.T) {
	c := Start(t)
	c.Create(t, "default", GameServer{Name: "gs-1", Fleet: "rps", RoomsCap: 3, PlayersCap: 6})
	c.Create(t, "default", GameServer{Name: "gs-2", Fleet: "rps", RoomsCap: 3, PlayersCap: 6, State: "Allocated", Rooms: []string{"x", "y"}, Players: []string{"x1", "x2", "y1", "y2"}})
	c.Create(t, "default", GameServer{Name: "gs-other", Fleet: "another", RoomsCap: 3, PlayersCap: 6})
	// A retiring server's free rooms are not free: it takes no more.
	c.Create(t, "default", GameServer{Name: "gs-retiring", Fleet: "rps", RoomsCap: 3, PlayersCap: 6, State: "Allocated",
		Labels: map[string]string{agones.RetiringLabel: "true"}, Rooms: []string{"z"}, Players: []string{"z1", "z2"}})
	b := backend(t, kube.Config{Mode: kube.HighDensity}, kube.Cluster{Name: "one", Config: c.Config, Namespace: "default", Fleet: "rps", Region: "eu"})
	if _, known := b.Capacity("eu"); known {
		t.Fatal("capacity known before the informers synced")
	}
	if err := b.Watch(t.Context()); err != nil {
		t.Fatal(err)
	}
	eu, known := b.Capacity("eu")
	if !known || eu.FreeRooms != 4 || eu.TotalRooms != 6 || eu.Servers != 2 || eu.ReadyServers != 1 || eu.AllocatedServers != 1 {
		t.Fatalf("eu: %+v known=%v", eu, known)
	}
	if _, known := b.Capacity("us"); known {
		t.Fatal("a region with no cluster reported as known")
	}
	if _, err := b.Allocate(t.Context(), match("m1", "a", "b")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// High density fills gs-2's free room first: one Allocated server still.
		if c, _ := b.Capacity("eu"); c.FreeRooms == 3 && c.AllocatedServers == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the informer did not see the allocation")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCapacityTrustsNoServerPastItsFleet: a game server's SDK may raise
// its rooms List's capacity (to 1,000); a compromised one raised its
// region's free rooms, and frontends admitted players to a full region.
// No server counts for more rooms than its Fleet gave it.
func TestCapacityTrustsNoServerPastItsFleet(t *testing.T) {
	c := Start(t)
	c.Create(t, "default", GameServer{Name: "gs-1", Fleet: "rps", RoomsCap: 2, PlayersCap: 4})
	c.Create(t, "default", GameServer{Name: "evil", Fleet: "rps", RoomsCap: 2, StatusRoomsCap: 1000, PlayersCap: 4, State: "Allocated", Rooms: []string{"x"}})
	b := backend(t, kube.Config{Mode: kube.HighDensity}, kube.Cluster{Name: "one", Config: c.Config, Namespace: "default", Fleet: "rps", Region: "eu"})
	if err := b.Watch(t.Context()); err != nil {
		t.Fatal(err)
	}
	if eu, known := b.Capacity("eu"); !known || eu.FreeRooms != 3 || eu.TotalRooms != 4 {
		t.Fatalf("eu: %+v known=%v, want 3 free of 4", eu, known)
	}
}
