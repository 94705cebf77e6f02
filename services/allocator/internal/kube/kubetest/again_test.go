package kubetest

import (
	"errors"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/kube"
)

// TestAnAllocationItsCallerGaveUpOnIsFoundAgain: Agones finishes an
// allocation whose caller stopped waiting (its batch allocator updates
// the GameServer under its own context), as a slow API makes the
// backend's call time out. The request handler's retry asks again for
// the same match: the backend answers with the server Agones gave it,
// not a second one (allocator.Backend: asked again for the same match,
// the same server). Before, every retry allocated anew, so the slower
// Agones was, the more servers each match took.
func TestAnAllocationItsCallerGaveUpOnIsFoundAgain(t *testing.T) {
	c := Start(t)
	for _, name := range []string{"gs-1", "gs-2"} {
		c.Create(t, "default", GameServer{Name: name, Fleet: "rps", RoomsCap: 1, PlayersCap: 2})
	}
	b := backend(t, kube.Config{Mode: kube.OnePerServer, Timeout: 300 * time.Millisecond},
		kube.Cluster{Name: "one", Config: c.Config, Namespace: "default", Fleet: "rps", Region: "eu"})
	if err := b.Watch(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.Inject(Fault{Delay: time.Second, Finish: true})
	m := match("m-slow", "a", "b")
	if _, err := b.Allocate(t.Context(), m); !errors.Is(err, kube.ErrAPI) {
		t.Fatalf("a call that outlived its timeout: %v, want an API error", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for { // Agones finishes it, and the backend's informer sees it
		if eu, _ := b.Capacity("eu"); eu.AllocatedServers == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the abandoned allocation was not made")
		}
		time.Sleep(50 * time.Millisecond)
	}
	first := ""
	for _, name := range []string{"gs-1", "gs-2"} {
		if g := c.Get(t, "default", name); g.State == "Allocated" {
			first = name
		}
	}
	srv, err := b.Allocate(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Name != first || srv.Address == "" || srv.Port == 0 || srv.Cluster != "one" || c.Calls() != 1 {
		t.Fatalf("asked again: %+v after %d allocation calls; want %s, from one call", srv, c.Calls(), first)
	}
	for _, name := range []string{"gs-1", "gs-2"} {
		if g := c.Get(t, "default", name); name != first && g.State != "Ready" {
			t.Fatalf("%s is %s: a second server for one match", name, g.State)
		}
	}
}
