package kube

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
)

var gameServers = schema.GroupVersionResource{Group: "agones.dev", Version: "v1", Resource: "gameservers"}

// Watch starts an informer on each cluster's fleet of GameServers; the
// capacity is read from their caches. It returns once the caches are
// synced or ctx ends, and the informers run until ctx ends.
func (b *Backend) Watch(ctx context.Context) error {
	for _, c := range b.clusters {
		dyn, err := dynamic.NewForConfig(c.Config)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 30*time.Second, c.Namespace, func(o *metav1.ListOptions) {
			o.LabelSelector = "agones.dev/fleet=" + c.Fleet
		})
		inf := f.ForResource(gameServers).Informer()
		if err := inf.AddIndexers(cache.Indexers{roomIndex: roomsOf}); err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		if err := inf.SetTransform(slim); err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		c.informer.Store(&informer{servers: inf.GetIndexer(), synced: inf.HasSynced})
		f.Start(ctx.Done())
	}
	for _, c := range b.clusters {
		if !cache.WaitForCacheSync(ctx.Done(), c.informer.Load().synced) {
			return ctx.Err()
		}
	}
	return nil
}

// informer is a cluster's GameServer informer: its cache, indexed by
// the rooms each server holds (roomIndex), and whether the cache has
// synced.
type informer struct {
	servers cache.Indexer
	synced  func() bool
}

// servers are the cluster's GameServers as its informer caches them, or
// false until Watch made the informer and its cache synced.
func (c *cluster) servers() ([]any, bool) {
	idx, ok := c.cache()
	if !ok {
		return nil, false
	}
	return idx.List(), true
}

// cache is the cluster's informer cache, or false until Watch made the
// informer and its cache synced.
func (c *cluster) cache() (cache.Indexer, bool) {
	inf := c.informer.Load()
	if inf == nil || !inf.synced() {
		return nil, false
	}
	return inf.servers, true
}

var _ allocator.CapacitySource = (*Backend)(nil)

// Capacity sums the region's clusters: free rooms on Ready and Allocated
// servers, their room capacity, and how many of each there are.
func (b *Backend) Capacity(region string) (events.Capacity, bool) {
	var out events.Capacity
	known, seen := true, false
	for _, c := range b.clusters {
		if c.Region != region {
			continue
		}
		seen = true
		servers, ok := c.servers()
		if !ok {
			known = false
			continue
		}
		for _, o := range servers {
			u, ok := o.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			if _, retiring := u.GetLabels()[agones.RetiringLabel]; retiring {
				continue // takes no more rooms, so none of its rooms are free
			}
			state, _, _ := unstructured.NestedString(u.Object, "status", "state")
			switch state {
			case "Ready":
				out.ReadyServers++
			case agones.StateAllocated:
				out.AllocatedServers++
			default:
				continue
			}
			// The rooms List: its values are the live rooms.
			live, _, _ := unstructured.NestedSlice(u.Object, "status", "lists", agones.ListRooms, "values")
			count := int64(len(live))
			capacity, ok, _ := unstructured.NestedInt64(u.Object, "status", "lists", agones.ListRooms, "capacity")
			if !ok { // a server without a rooms List hosts one match
				capacity, count = 1, 0
				if state == agones.StateAllocated {
					count = 1
				}
			}
			// At most its Fleet's: the status is the game server's to
			// write (its SDK may raise a List's capacity to 1,000), and a
			// compromised one raised its region's free rooms so that
			// frontends admitted players to a full region.
			if most, ok, _ := unstructured.NestedInt64(u.Object, "spec", "lists", agones.ListRooms, "capacity"); ok {
				capacity = min(capacity, most)
			}
			out.FreeRooms += int(max(0, capacity-count))
			out.TotalRooms += int(capacity)
			out.Servers++
		}
	}
	return out, known && seen
}
