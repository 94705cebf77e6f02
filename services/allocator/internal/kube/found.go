package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
)

// allocatedTo is the server a cluster hosting m's mode gave m before, if
// its informer has seen one. A call whose answer was lost (a timeout:
// Agones finishes an allocation its caller gave up on; a cut; an
// allocator gone before it recorded the server) is followed by another
// for the same match, which gets that server rather than a second one,
// as allocator.Backend requires. A call with no clear answer watches for
// it a while itself, before it asks another cluster or fails (settle);
// what Agones finishes later than that and before the next call's look
// is not found, and a second server is taken then.
func (b *Backend) allocatedTo(m events.Match) (allocator.Server, bool) {
	for _, c := range b.clusters {
		if !c.hosts(m.Mode) {
			continue
		}
		if srv, ok := c.allocatedTo(m.MatchID); ok {
			b.log.Info("match allocated before; same game server", "match_id", m.MatchID, "cluster", c.Name, "server", srv.Name)
			return srv, true
		}
	}
	return allocator.Server{}, false
}

// settle watches c, for up to Config.Settle, for the server Agones may
// still give m after a call to c that got no clear answer, within the
// call's bound (ctx: a stopping allocator's stop does not end it,
// allocator.records.place).
func (b *Backend) settle(ctx context.Context, c *cluster, m events.Match) (allocator.Server, bool) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Settle)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if srv, ok := c.allocatedTo(m.MatchID); ok {
			b.log.Info("allocation answered late; its server found", "match_id", m.MatchID, "cluster", c.Name, "server", srv.Name)
			return srv, true
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return allocator.Server{}, false
		}
	}
}

// roomIndex indexes GameServers by the match ids in their rooms List.
const roomIndex = "room"

func roomsOf(obj any) ([]string, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, nil
	}
	rooms, _, _ := unstructured.NestedStringSlice(u.Object, "status", "lists", agones.ListRooms, "values")
	return rooms, nil
}

// holding says whether GameServer u may hold the room an allocation
// gave it: Allocated, or for a moment Ready or RequestReady again with
// the room still listed (the SDK sidecar retries a Ready queued before
// the allocation landed over it on a conflict, and the game server's
// keeper sets it back: a look in that moment took a second server for
// the match); not one going away.
func holding(u *unstructured.Unstructured) bool {
	switch state, _, _ := unstructured.NestedString(u.Object, "status", "state"); state {
	case agones.StateAllocated, agones.StateReady, agones.StateRequestReady:
		return u.GetDeletionTimestamp() == nil
	}
	return false
}

// allocatedTo is the Allocated server whose rooms List holds matchID and
// that an allocation for matchID made, as the cluster's informer has it
// (Backend.allocatedTo says why). The List alone is the game server's
// word (its SDK adds to it): a compromised one that listed a match id its
// player had heard ("matched") was given the match, every player's join
// token with it. The match's room annotation (agones.MatchAnnotationPrefix)
// is written by the allocation's metadata patch only: the SDK writes
// annotations under agones.dev/sdk- alone.
func (c *cluster) allocatedTo(matchID string) (allocator.Server, bool) {
	idx, ok := c.cache()
	if !ok {
		return allocator.Server{}, false
	}
	found, _ := idx.ByIndex(roomIndex, matchID)
	for _, o := range found {
		u, ok := o.(*unstructured.Unstructured)
		if !ok || !holding(u) {
			continue
		}
		// Its presence is the proof, not its decoding: a room a newer
		// allocator annotated in a shape this one's check refuses (a
		// rollout) is still the match's.
		if _, ok := u.GetAnnotations()[agones.MatchAnnotationPrefix+matchID]; !ok {
			continue // listed by the server, not allocated for the match
		}
		srv := allocator.Server{Name: u.GetName(), Cluster: c.Name}
		srv.Address, _, _ = unstructured.NestedString(u.Object, "status", "address")
		if ports, _, _ := unstructured.NestedSlice(u.Object, "status", "ports"); len(ports) > 0 {
			if p, ok := ports[0].(map[string]any); ok {
				port, _, _ := unstructured.NestedInt64(p, "port")
				srv.Port = int(port)
			}
		}
		if reachable(srv) {
			return srv, true
		}
	}
	return allocator.Server{}, false
}

// reachable says srv names a server players can be sent to: never
// nowhere.
func reachable(srv allocator.Server) bool {
	return srv.Name != "" && srv.Address != "" && srv.Port > 0 && srv.Port <= 65535
}

// ServerOf reads the apiserver's answer to a GameServerAllocation: the
// server when Allocated, allocator.ErrNoCapacity when UnAllocated, ErrAPI
// on Contention (worth a retry), and errBadAnswer for anything that is not
// a usable allocation, such as an Allocated server without an address or
// a port: players must never be sent nowhere.
func ServerOf(data []byte, cluster string) (allocator.Server, error) {
	var out agones.GameServerAllocation
	if err := json.Unmarshal(data, &out); err != nil {
		return allocator.Server{}, fmt.Errorf("cluster %s: %w: %w", cluster, errBadAnswer, err)
	}
	switch out.Status.State {
	case agones.StateAllocated:
		srv := allocator.Server{Name: out.Status.GameServerName, Address: out.Status.Address, Cluster: cluster}
		if len(out.Status.Ports) > 0 {
			srv.Port = int(out.Status.Ports[0].Port)
		}
		if !reachable(srv) {
			return allocator.Server{}, fmt.Errorf("cluster %s: %w: Allocated without a server name, address or port: %+v", cluster, errBadAnswer, out.Status)
		}
		return srv, nil
	case agones.StateUnAllocated:
		return allocator.Server{}, fmt.Errorf("cluster %s: %w", cluster, allocator.ErrNoCapacity)
	default: // Contention: another allocation raced us; worth a retry
		return allocator.Server{}, fmt.Errorf("%w: cluster %s: allocation state %q", ErrAPI, cluster, out.Status.State)
	}
}
