// Package local is the allocator's backend without Kubernetes: a fixed list
// of game servers started by the local stack (make run, docker-compose),
// handed out in turn. It stands where the Agones backend stands in a
// cluster, behind the same interface.
package local

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
)

// Backend hands out the configured servers round-robin. The same match
// always gets the same server while this process lives.
type Backend struct {
	servers []allocator.Server

	mu    sync.Mutex
	next  int
	given map[string]allocator.Server // match id -> server
}

var _ allocator.Backend = (*Backend)(nil)

// Parse reads "host:port,host:port" (an optional "name=" before each) into
// servers. The public host is the host given.
func Parse(list string) ([]allocator.Server, error) {
	var out []allocator.Server
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, named := strings.Cut(item, "=")
		if !named {
			addr = item
		}
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("game server %q: %w", item, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port <= 0 || port > 65535 {
			return nil, fmt.Errorf("game server %q: bad port", item)
		}
		if !named {
			name = fmt.Sprintf("local-%d", port)
		}
		out = append(out, allocator.Server{Name: name, Address: host, Port: port})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no game servers in %q", list)
	}
	return out, nil
}

// New returns a backend over servers.
func New(servers []allocator.Server) *Backend {
	return &Backend{servers: servers, given: map[string]allocator.Server{}}
}

// Allocate picks the next server for m.
func (b *Backend) Allocate(_ context.Context, m events.Match) (allocator.Server, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.given[m.MatchID]; ok {
		return s, nil
	}
	if len(b.servers) == 0 {
		return allocator.Server{}, allocator.ErrNoCapacity
	}
	s := b.servers[b.next%len(b.servers)]
	b.next++
	b.given[m.MatchID] = s
	return s, nil
}
