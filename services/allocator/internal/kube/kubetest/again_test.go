package kubetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/kube"
)

// TestAnAllocationItsCallerGaveUpOnIsFoundAgain: Agones finishes an
// allocation whose caller stopped waiting (its batch allocator updates
// the GameServer under its own context), as a slow API makes the
// backend's call time out. A call with no clear answer watches for that
// server a while (Config.Settle) and answers with it, before it asks
// another cluster; one that finished later still is found by the next
// call for the match. Either way the
// match gets one server (allocator.Backend: asked again for the same
// match, the same server). Before, every retry allocated anew, so the
// slower Agones was, the more servers each match took.
func TestAnAllocationItsCallerGaveUpOnIsFoundAgain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		delay    time.Duration // Agones' answer, past the call's 300 ms
		settle   time.Duration
		clusters int  // of one fleet: a call past its settle tries the next
		found    bool // by the call itself, within its settle
	}{
		{"finished while the call settles", 800 * time.Millisecond, 5 * time.Second, 1, true},
		{"finished after", 3 * time.Second, time.Second, 1, false},
		{"no other cluster asked meanwhile", 800 * time.Millisecond, 5 * time.Second, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Start(t)
			for _, name := range []string{"gs-1", "gs-2"} {
				c.Create(t, "default", GameServer{Name: name, Fleet: "rps", RoomsCap: 1, PlayersCap: 2})
			}
			var clusters []kube.Cluster
			for i := range tc.clusters {
				clusters = append(clusters, kube.Cluster{Name: fmt.Sprint("c", i), Priority: i, Config: c.Config, Namespace: "default", Fleet: "rps", Region: "eu"})
			}
			b := backend(t, kube.Config{Mode: kube.OnePerServer, Timeout: 300 * time.Millisecond, Settle: tc.settle}, clusters...)
			if err := b.Watch(t.Context()); err != nil {
				t.Fatal(err)
			}
			c.Inject(Fault{Delay: tc.delay, Finish: true})
			m := match("m-slow", "a", "b")
			srv, err := b.Allocate(t.Context(), m)
			if tc.found != (err == nil) {
				t.Fatalf("a call Agones answered after %s: %+v, %v", tc.delay, srv, err)
			}
			if err != nil {
				if !errors.Is(err, kube.ErrAPI) {
					t.Fatalf("%v, want an API error", err)
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
				if srv, err = b.Allocate(t.Context(), m); err != nil { // the retry
					t.Fatal(err)
				}
			}
			allocated := 0
			for _, name := range []string{"gs-1", "gs-2"} {
				if g := c.Get(t, "default", name); g.State == "Allocated" {
					allocated++
					if srv.Name != name {
						t.Fatalf("answered %+v, Agones gave %s", srv, name)
					}
				}
			}
			if allocated != 1 || srv.Address == "" || srv.Port == 0 || srv.Cluster != "c0" || c.Calls() != 1 {
				t.Fatalf("%+v: %d servers allocated, %d allocation calls; want one of each", srv, allocated, c.Calls())
			}
		})
	}
}

// TestAServerListingAMatchItWasNotGivenGetsNothing: a match found again
// was any Allocated server whose rooms List held its id, and the List is
// the game server's to write (its SDK). A compromised server that listed
// the id of a match its player had heard ("matched") got the match, and
// every player's join token. Only the server an allocation for the match
// annotated is the match's.
func TestAServerListingAMatchItWasNotGivenGetsNothing(t *testing.T) {
	c := Start(t)
	c.Create(t, "default", GameServer{Name: "evil", Fleet: "rps", State: "Allocated", Rooms: []string{"m-heard"}, RoomsCap: 1, PlayersCap: 2})
	c.Create(t, "default", GameServer{Name: "gs-1", Fleet: "rps", RoomsCap: 1, PlayersCap: 2})
	b := backend(t, kube.Config{Mode: kube.OnePerServer}, kube.Cluster{Name: "c0", Config: c.Config, Namespace: "default", Fleet: "rps", Region: "eu"})
	if err := b.Watch(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv, err := b.Allocate(t.Context(), match("m-heard", "a", "b"))
	if err != nil || srv.Name != "gs-1" || c.Calls() != 1 {
		t.Fatalf("the match went to %+v (%v) after %d allocation calls, want gs-1 from one", srv, err, c.Calls())
	}
	// Asked again once the informer has seen the allocation, the server
	// the allocation annotated is found, no call.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if eu, _ := b.Capacity("eu"); eu.AllocatedServers == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the informer did not see the allocation")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if again, err := b.Allocate(t.Context(), match("m-heard", "a", "b")); err != nil || again.Name != "gs-1" || c.Calls() != 1 {
		t.Fatalf("asked again: %+v (%v) after %d calls", again, err, c.Calls())
	}
}

// TestAMatchOnAServerReadyForAMomentIsFoundAgain: the SDK sidecar retries
// a Ready queued before an allocation landed over it (a conflict), and
// the server reads Ready or RequestReady, its room still listed, until
// its keeper sets it back. A call for the match in that moment (a retry
// after an unclear answer) finds the server the match was given, not a
// second one.
func TestAMatchOnAServerReadyForAMomentIsFoundAgain(t *testing.T) {
	for _, state := range []string{"Ready", "RequestReady"} {
		t.Run(state, func(t *testing.T) {
			c := Start(t)
			for _, name := range []string{"gs-1", "gs-2"} {
				c.Create(t, "default", GameServer{Name: name, Fleet: "rps", RoomsCap: 1, PlayersCap: 2})
			}
			b := backend(t, kube.Config{Mode: kube.OnePerServer}, kube.Cluster{Name: "c0", Config: c.Config, Namespace: "default", Fleet: "rps", Region: "eu"})
			if err := b.Watch(t.Context()); err != nil {
				t.Fatal(err)
			}
			m := match("m-back", "a", "b")
			first, err := b.Allocate(t.Context(), m)
			if err != nil {
				t.Fatal(err)
			}
			// The informer sees the allocation first: else the wait below
			// for none allocated may pass before it, and the second call
			// find the server's room not yet indexed (a busy CI did).
			deadline := time.Now().Add(10 * time.Second)
			for {
				if eu, _ := b.Capacity("eu"); eu.AllocatedServers == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the informer did not see the allocation")
				}
				time.Sleep(50 * time.Millisecond)
			}
			gs, err := c.Dyn.Resource(GameServers).Namespace("default").Get(t.Context(), first.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := unstructured.SetNestedField(gs.Object, state, "status", "state"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Dyn.Resource(GameServers).Namespace("default").Update(t.Context(), gs, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			deadline = time.Now().Add(10 * time.Second)
			for { // the informer sees it
				if eu, _ := b.Capacity("eu"); eu.AllocatedServers == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the informer did not see the server leave Allocated")
				}
				time.Sleep(50 * time.Millisecond)
			}
			again, err := b.Allocate(t.Context(), m)
			if err != nil || again.Name != first.Name || c.Calls() != 1 {
				t.Fatalf("asked again: %+v %v after %d calls, want %s and no second allocation", again, err, c.Calls(), first.Name)
			}
		})
	}
}
