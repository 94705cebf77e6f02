// Package kubetest runs the allocator's Kubernetes backend against a real
// kube-apiserver (envtest, with Agones' real CRDs installed) and a test
// double of Agones' allocation API. GameServerAllocation is not a CRD:
// Agones serves it from an aggregated API. The double plays that part. It
// proxies every other request to the apiserver, so a client sees one API
// as it does in a cluster, and answers allocations with Agones' semantics
// over the real GameServer objects: a request Agones' validation refuses
// answered 422 (sdktest.ValidateAllocation), selectors tried in order,
// the state filter, counters and lists bounds, Packed order with
// priorities, then the metadata, counter and list actions, through the
// same helpers as the fake SDK (lists cut at their capacity without an
// error), and UnAllocated when the GameServer update keeps failing.
//
// cluster.go starts the apiserver and the double in front of it, and
// creates and reads game servers; double.go answers the allocations.
package kubetest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// GameServers is the GameServer resource.
var GameServers = schema.GroupVersionResource{Group: "agones.dev", Version: "v1", Resource: "gameservers"}

// Cluster is a running test cluster: an apiserver with the Agones CRDs and
// the allocation double in front of it.
type Cluster struct {
	// Admin reaches the apiserver directly, as cluster admin.
	Admin *rest.Config
	// Config reaches the double (allocation API plus everything else).
	Config *rest.Config
	Dyn    dynamic.Interface

	mu     sync.Mutex
	faults []Fault
	calls  int
}

// Fault is what the double does to one allocation call: answer an HTTP
// status instead of allocating, wait before allocating, or have the
// apiserver refuse the call's first Conflicts GameServer updates (409,
// as when a server changed between Agones' read and its write).
//
// A call whose caller stops waiting during its Delay is dropped, unless
// Finish: then it allocates all the same, as Agones does (its batch
// allocator updates the GameServer under its own context, not the
// request's), and its answer reaches no one.
type Fault struct {
	Status    int
	Delay     time.Duration
	Conflicts int
	Finish    bool
}

// Start runs a cluster for the test. It needs KUBEBUILDER_ASSETS (bin/kube,
// built by tools/kube/build.sh); without it the test is skipped locally
// and fails in CI.
func Start(t *testing.T) *Cluster {
	t.Helper()
	assets := testkit.Env(t, "KUBEBUILDER_ASSETS", "make test builds the control plane into bin/kube (tools/kube/build.sh) and sets it")
	crds, err := filepath.Abs(filepath.Join(repoRoot(t), "..", "shared", "agones", "crds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctrllog.SetLogger(logr.Discard()) // envtest logs through controller-runtime
	env := &envtest.Environment{BinaryAssetsDirectory: assets, CRDInstallOptions: envtest.CRDInstallOptions{Paths: []string{crds}}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start kube-apiserver: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Admin: cfg, Dyn: dyn}
	target, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = rt
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const pre = "/apis/allocation.agones.dev/v1/namespaces/"
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, pre) && strings.HasSuffix(r.URL.Path, "/gameserverallocations") {
			ns := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, pre), "/gameserverallocations")
			c.serveAllocation(w, r, ns)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	c.Config = &rest.Config{Host: hs.URL}
	return c
}

func repoRoot(t *testing.T) string {
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// Inject makes the next allocation calls answer these faults, in order.
func (c *Cluster) Inject(f ...Fault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = append(c.faults, f...)
}

// Calls is how many allocation calls arrived.
func (c *Cluster) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// GameServer is a test game server to create: its rooms List (the live
// match ids, at most RoomsCap) and players List, as the chart's Fleet
// declares them.
type GameServer struct {
	Name, Fleet, State string
	Labels             map[string]string
	Rooms              []string
	RoomsCap           int64
	// StatusRoomsCap, if set, is the rooms List's capacity in the status
	// (a game server's SDK may change it); RoomsCap is the spec's.
	StatusRoomsCap int64
	Players        []string
	PlayersCap     int64
	Port           int64
}

// Create makes a GameServer object with its status, as Agones' controller
// would have it once the pod is up.
func (c *Cluster) Create(t *testing.T, ns string, g GameServer) {
	t.Helper()
	labels := map[string]any{"agones.dev/fleet": g.Fleet}
	for k, v := range g.Labels {
		labels[k] = v
	}
	if g.State == "" {
		g.State = "Ready"
	}
	if g.Port == 0 {
		g.Port = 7000
	}
	if g.StatusRoomsCap == 0 {
		g.StatusRoomsCap = g.RoomsCap
	}
	values := func(vs []string) []any {
		out := []any{}
		for _, v := range vs {
			out = append(out, v)
		}
		return out
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "agones.dev/v1", "kind": "GameServer",
		"metadata": map[string]any{"name": g.Name, "namespace": ns, "labels": labels},
		"spec": map[string]any{
			"ports": []any{map[string]any{"name": "default", "containerPort": int64(7000)}},
			"lists": map[string]any{
				agones.ListRooms:   map[string]any{"capacity": g.RoomsCap},
				agones.ListPlayers: map[string]any{"capacity": g.PlayersCap},
			},
			"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "game", "image": "quickmatch/game"}}}},
		},
		"status": map[string]any{
			"state": g.State, "address": "10.0.0." + fmt.Sprint(len(g.Name)), "ports": []any{map[string]any{"name": "default", "port": g.Port}},
			"lists": map[string]any{
				agones.ListRooms:   map[string]any{"capacity": g.StatusRoomsCap, "values": values(g.Rooms)},
				agones.ListPlayers: map[string]any{"capacity": g.PlayersCap, "values": values(g.Players)},
			},
		},
	}}
	if _, err := c.Dyn.Resource(GameServers).Namespace(ns).Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create GameServer %s: %v", g.Name, err)
	}
}

// Got is a GameServer as read back: its state, lists and metadata.
type Got struct {
	State       string
	Rooms       []string
	Players     []string
	Labels      map[string]string
	Annotations map[string]string
}

// Get reads a GameServer.
func (c *Cluster) Get(t *testing.T, ns, name string) Got {
	t.Helper()
	obj, err := c.Dyn.Resource(GameServers).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := Got{Labels: obj.GetLabels(), Annotations: obj.GetAnnotations()}
	g.State, _, _ = unstructured.NestedString(obj.Object, "status", "state")
	g.Rooms, _, _ = unstructured.NestedStringSlice(obj.Object, "status", "lists", agones.ListRooms, "values")
	g.Players, _, _ = unstructured.NestedStringSlice(obj.Object, "status", "lists", agones.ListPlayers, "values")
	return g
}
