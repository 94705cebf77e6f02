// Package local is the allocator's backend without Kubernetes: a fixed list
// of game servers started by the local stack (make run, docker-compose).
// It stands where the Agones backend stands in a cluster, behind the same
// interface, and learns each server's free rooms from its /status the way
// the Agones backend reads the rooms List. The /status body is the game
// server's, declared once in pkg/play.
package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
)

// Target is one game server of the list: where players are sent, and where
// its /status is read. The two differ when the allocator sees the servers
// on another network than the players do (docker-compose: players use
// localhost:7000, the allocator game-1:7000).
type Target struct {
	allocator.Server
	// StatusAddr is host:port of /status; empty means Address:Port.
	StatusAddr string
}

// Parse reads "host:port,host:port" into targets. Each item may have a
// "name=" before it and an "@host:port" after it, the address of its
// /status when that is not the address players are sent to.
func Parse(list string) ([]Target, error) {
	var out []Target
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, named := strings.Cut(item, "=")
		if !named {
			addr = item
		}
		addr, statusAddr, hasStatus := strings.Cut(addr, "@")
		if hasStatus {
			if _, _, err := net.SplitHostPort(statusAddr); err != nil {
				return nil, fmt.Errorf("game server %q: status address: %w", item, err)
			}
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
		out = append(out, Target{Server: allocator.Server{Name: name, Address: host, Port: port}, StatusAddr: statusAddr})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no game servers in %q", list)
	}
	return out, nil
}

// Backend hands out the server with the most free rooms. The same match
// always gets the same server while this process lives.
type Backend struct {
	client *http.Client
	// startGrace is how long a server that never answered is in its start
	// grace (inStartGrace) before it counts as down.
	startGrace time.Duration

	mu      sync.Mutex
	servers []*server
	given   map[string]allocator.Server // match id -> server
	order   []string                    // match ids, oldest first, to bound given
}

// inStartGrace reports a server whose polls failed since its first,
// within Backend.startGrace: not tried, showing nothing, and holding back
// the capacity report.
func (s *server) inStartGrace() bool { return !s.known && !s.firstFailedAt.IsZero() }

type server struct {
	Target
	// known is false until the first /status answer, or until it has not
	// answered for startGrace; a server not polled yet is tried (it may
	// well have room), one that did not answer is not, known or not.
	known, up bool
	// firstFailedAt is when a server not known yet first failed to
	// answer (Backend.startGrace); never cleared, read only while !known.
	firstFailedAt time.Time
	free, size    int
	// backfill are the requests of its rooms at the last poll (shown),
	// open its rooms then (opened).
	backfill []allocator.ShownBackfill
	open     []allocator.ShownRoom
}

var (
	_ allocator.Backend        = (*Backend)(nil)
	_ allocator.CapacitySource = (*Backend)(nil)
	_ allocator.BackfillSource = (*Backend)(nil)
)

// rememberMatches bounds the match -> server memory.
const rememberMatches = 100_000

// maxStatusBytes bounds a /status body, the game server's word: one of a
// server hosting allocator.MaxRoomsShown rooms, each open and asking for
// players (a 64-byte match id, twice, and seats on up to
// play.MaxPlayers teams), with play.MaxSeated 64-byte players seated, is
// about 660 KB. A larger one
// is not read: the server counts as down.
const maxStatusBytes = 1 << 20

// startGrace is how long a game server that never answered is given to
// start (Backend.startGrace, a field so that tests can end it): the
// local stack and compose start the game servers beside the allocator,
// and one may not listen yet at its first poll. Counted down at once, it
// made the capacity report say no room, and the frontends refused every
// ticket until the next poll. Not a setting: only the local backend,
// whose servers start with it, has one.
const startGrace = 10 * time.Second

// New returns a backend over servers.
func New(targets []Target) *Backend {
	b := &Backend{client: &http.Client{Timeout: 2 * time.Second}, startGrace: startGrace, given: map[string]allocator.Server{}}
	for _, t := range targets {
		b.servers = append(b.servers, &server{Target: t})
	}
	return b
}

// Allocate picks the server with the most free rooms for m and counts the
// room as taken until the next poll says otherwise.
func (b *Backend) Allocate(_ context.Context, m events.Match) (allocator.Server, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.given[m.MatchID]; ok {
		return s, nil
	}
	// The most free rooms wins; a server not polled yet scores below any
	// server known to have room, and a down or full server, or one that
	// has not answered yet, is skipped.
	var best *server
	bestScore := -2
	for _, s := range b.servers {
		score := -1
		if s.inStartGrace() {
			// Players sent there would fail as surely as at a down server;
			// the grace only keeps it out of the capacity report.
			continue
		}
		if s.known {
			if !s.up || s.free <= 0 {
				continue
			}
			score = s.free
		}
		if score > bestScore {
			best, bestScore = s, score
		}
	}
	if best == nil {
		return allocator.Server{}, allocator.ErrNoCapacity
	}
	best.free--
	b.given[m.MatchID] = best.Server
	b.order = append(b.order, m.MatchID)
	if len(b.order) > rememberMatches {
		delete(b.given, b.order[0])
		b.order = b.order[1:]
	}
	return best.Server, nil
}

// Capacity sums what the servers reported at the last poll; the local
// servers serve every region alike. A server with no room open counts as
// Ready, one with rooms as Allocated. Known once every server answered or
// counts as down: one in its start grace may be about to bring its rooms,
// and a report without them would refuse tickets those rooms could take.
func (b *Backend) Capacity(string) (events.Capacity, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var c events.Capacity
	known := true
	for _, s := range b.servers {
		known = known && s.known
		if !s.known || !s.up {
			continue
		}
		c.FreeRooms += max(s.free, 0)
		c.TotalRooms += s.size
		c.Servers++
		if s.free >= s.size {
			c.ReadyServers++
		} else {
			c.AllocatedServers++
		}
	}
	return c, known
}

// Backfills are the requests the servers' rooms made at the last poll
// (each server's play.Status.Backfill, shown), each with its server;
// known once every server was polled.
func (b *Backend) Backfills() ([]allocator.ShownBackfill, bool) {
	return gather(b, func(s *server) []allocator.ShownBackfill { return s.backfill })
}

// RoomBackfills are the requests for room roomID among Backfills.
func (b *Backend) RoomBackfills(roomID string) ([]allocator.ShownBackfill, bool) {
	all, known := b.Backfills()
	return slices.DeleteFunc(all, func(r allocator.ShownBackfill) bool { return r.MatchID != roomID }), known
}

// Rooms are the rooms the servers showed open at the last poll (each
// server's play.Status.Open, opened), each with its server; known once
// every server was polled.
func (b *Backend) Rooms() ([]allocator.ShownRoom, bool) {
	return gather(b, func(s *server) []allocator.ShownRoom { return s.open })
}

// gather joins what each server showed at the last poll (of); known once
// every server was polled (one in its start grace, or down, shows
// nothing).
func gather[T any](b *Backend, of func(*server) []T) ([]T, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []T
	known := true
	for _, s := range b.servers {
		// One in its start grace shows nothing, as a down one does: the
		// others' rooms and requests are not held up by it.
		known = known && (s.known || s.inStartGrace())
		out = append(out, of(s)...)
	}
	return out, known
}

// Run polls every server's /status every interval until ctx ends.
func (b *Backend) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		b.poll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (b *Backend) poll(ctx context.Context) {
	b.mu.Lock()
	servers := append([]*server(nil), b.servers...)
	b.mu.Unlock()
	for _, s := range servers {
		st, err := b.status(ctx, s.Target)
		b.mu.Lock()
		if err != nil && !s.known {
			// Never answered: maybe not listening yet (startGrace).
			if s.firstFailedAt.IsZero() {
				s.firstFailedAt = time.Now()
			}
			if time.Since(s.firstFailedAt) < b.startGrace {
				b.mu.Unlock()
				continue
			}
		}
		s.known, s.up = true, err == nil
		// A server that stopped answering asks for no one, and shows no
		// room open: its rooms' records are kept no longer.
		s.backfill, s.open = nil, nil
		if err == nil {
			s.free, s.size = st.Free(), st.MaxRooms
			s.backfill, s.open = shown(s.Server, st), opened(s.Server, st)
		}
		b.mu.Unlock()
	}
}

// shown are the requests of st, the /status of server srv: at most one
// per room, the first it lists, and no more than the rooms it says it
// has open, nor than a server may host (allocator.MaxRoomsShown: what
// it says of its rooms is its own word too). The allocator refuses a
// request for a room another server runs, but every request costs it a
// look. Each carries the players st says are seated (at most
// play.MaxSeated, the rest not known to be seated yet), read from the
// same moment as its requests.
func shown(srv allocator.Server, st play.Status) []allocator.ShownBackfill {
	var out []allocator.ShownBackfill
	seated := slices.Clip(st.Seated[:min(len(st.Seated), play.MaxSeated)])
	seen := map[string]bool{}
	for _, r := range st.Backfill {
		if len(out) >= min(st.Rooms, st.MaxRooms, allocator.MaxRoomsShown) {
			break
		}
		if !seen[r.MatchID] {
			seen[r.MatchID] = true
			out = append(out, allocator.ShownBackfill{Backfill: r, Server: srv, Seated: seated})
		}
	}
	return out
}

// opened are the rooms st, the /status of server srv, shows open: each
// once, no more than the rooms it says it has open, nor than a server
// may host (as for shown).
func opened(srv allocator.Server, st play.Status) []allocator.ShownRoom {
	var out []allocator.ShownRoom
	seen := map[string]bool{}
	for _, id := range st.Open {
		if len(out) >= min(st.Rooms, st.MaxRooms, allocator.MaxRoomsShown) {
			break
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, allocator.ShownRoom{MatchID: id, Server: srv})
		}
	}
	return out
}

// status reads t's /status (the game server's play.Status).
func (b *Backend) status(ctx context.Context, t Target) (play.Status, error) {
	addr := t.StatusAddr
	if addr == "" {
		addr = net.JoinHostPort(t.Address, strconv.Itoa(t.Port))
	}
	url := "http://" + addr + play.StatusPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return play.Status{}, err
	}
	res, err := b.client.Do(req)
	if err != nil {
		return play.Status{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return play.Status{}, fmt.Errorf("%s: %s", url, res.Status)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxStatusBytes+1))
	if err != nil {
		return play.Status{}, fmt.Errorf("%s: %w", url, err)
	}
	if len(body) > maxStatusBytes {
		return play.Status{}, fmt.Errorf("%s: /status larger than %d bytes, more than a server hosting %d rooms says", url, maxStatusBytes, allocator.MaxRoomsShown)
	}
	var st play.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return play.Status{}, fmt.Errorf("%s: %w", url, err)
	}
	return st, nil
}
