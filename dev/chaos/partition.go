package chaos

// Partitions: every route between two NATS nodes and every service's
// connection to each node goes through a link (a testkit.Link, which holds
// bytes through a cut) the harness cuts and heals. The harness's own connections (the results history, the
// leases watch, the reuser) go to the nodes directly: the observer is not
// partitioned.
//
// Two things would let traffic go around the links, and both are shut:
// the nodes tell clients the other nodes' client URLs (off with
// --no_advertise), and a node that learns of a peer from another peer's
// gossip dials the peer's advertised cluster URL itself (an implicit
// route). Every node advertises a dead end (a port that closes what it
// accepts), so the only routes are the configured ones, through links.

import (
	"fmt"
	mrand "math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// network is the links of a run.
type network struct {
	// routes[i][j] is the link node i dials to reach node j's cluster port.
	routes  [3][3]*testkit.Link
	mu      sync.Mutex
	clients map[string][]*testkit.Link // by service: one link per node
	deadEnd net.Listener
}

// newNetwork makes the route links in front of the cluster ports.
func newNetwork(clusterPorts []int) (*network, error) {
	n := &network{clients: map[string][]*testkit.Link{}}
	var err error
	if n.deadEnd, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := n.deadEnd.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for i := range 3 {
		for j := range 3 {
			if i == j {
				continue
			}
			target := fmt.Sprintf("127.0.0.1:%d", clusterPorts[j])
			if n.routes[i][j], err = testkit.StartLink(target); err != nil {
				n.close()
				return nil, err
			}
		}
	}
	return n, nil
}

// routeURLs are node i's routes: to each other node, through its link.
func (n *network) routeURLs(i int) string {
	var out []string
	for j := range 3 {
		if j != i {
			out = append(out, "nats://"+n.routes[i][j].Addr())
		}
	}
	return strings.Join(out, ",")
}

// advertise is the cluster URL every node gives its peers (see above).
func (n *network) advertise() string { return n.deadEnd.Addr().String() }

// clientURLs makes a service's links to the nodes' client ports and
// returns its NATS_URL.
func (n *network) clientURLs(service string, clientPorts []int) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var urls []string
	for _, port := range clientPorts {
		l, err := testkit.StartLink(fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return "", err
		}
		n.clients[service] = append(n.clients[service], l)
		urls = append(urls, l.URL())
	}
	return strings.Join(urls, ","), nil
}

// cutPair cuts the routes between nodes i and j, both ways (both nodes
// dial each other; either may carry the route).
func (n *network) cutPair(i, j int) {
	n.routes[i][j].Cut(testkit.Both)
	n.routes[j][i].Cut(testkit.Both)
}

// cutNode cuts node i from the other two; its clients still reach it.
func (n *network) cutNode(i int) {
	for j := range 3 {
		if j != i {
			n.cutPair(i, j)
		}
	}
}

// cutService cuts a service's connections to every node in directions d
// (up: what it sends).
func (n *network) cutService(service string, d testkit.Direction) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range n.clients[service] {
		l.Cut(d)
	}
}

// attached are the nodes a service has a connection to now (0-based).
func (n *network) attached(service string) []int {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []int
	for i, l := range n.clients[service] {
		if l.Connected() > 0 {
			out = append(out, i)
		}
	}
	return out
}

// heal resumes every link.
func (n *network) heal() {
	for _, l := range n.all() {
		l.Heal()
	}
}

func (n *network) all() []*testkit.Link {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*testkit.Link
	for i := range 3 {
		for j := range 3 {
			if n.routes[i][j] != nil {
				out = append(out, n.routes[i][j])
			}
		}
	}
	for _, ls := range n.clients {
		out = append(out, ls...)
	}
	return out
}

func (n *network) close() {
	n.deadEnd.Close()
	for _, l := range n.all() {
		l.Close()
	}
}

// A partition is one cut the harness made, for the takeover report.
type partition struct {
	kind       string
	what       string
	start, end time.Time
	// workers are the matchers on the cut side: cut themselves, or
	// attached to a node cut off.
	workers []string
}

// partitionKinds are the cuts the harness makes, in turn: a run has as
// many of each (give or take one), which chance alone would not promise.
var partitionKinds = []string{"cut_nats", "cut_service", "cut_service_oneway", "cut_asymmetric"}

// partitionOnce makes one cut, holds it for between MaxCut/4 and MaxCut,
// and heals it.
func (s *system) partitionOnce(rng *mrand.Rand, note func(kind, format string, args ...any)) {
	hold := s.cfg.MaxCut/4 + time.Duration(rng.Int64N(int64(s.cfg.MaxCut*3/4)))
	p := partition{kind: partitionKinds[len(s.partitions)%len(partitionKinds)]}
	switch p.kind {
	case "cut_nats":
		i := rng.IntN(3)
		p.workers = s.matchersOn(i)
		p.what = fmt.Sprintf("nats-%d from the other two", i+1)
		p.start = time.Now()
		s.net.cutNode(i)
	case "cut_service", "cut_service_oneway":
		clients := s.natsClients()
		m := clients[rng.IntN(len(clients))]
		d, how := testkit.Both, "both ways"
		if p.kind == "cut_service_oneway" {
			d, how = testkit.Up, "what it sends"
			if rng.IntN(2) == 0 {
				d, how = testkit.Down, "what it receives"
			}
		}
		if m.kind == "matcher" {
			p.workers = []string{m.Name}
		}
		p.what = fmt.Sprintf("%s from NATS, %s", m.Name, how)
		p.start = time.Now()
		s.net.cutService(m.Name, d)
	default: // asymmetric: a reaches b, b reaches c, a does not reach c
		a := rng.IntN(3)
		c := (a + 1 + rng.IntN(2)) % 3
		b := 3 - a - c
		p.workers = append(s.matchersOn(a), s.matchersOn(c)...)
		p.what = fmt.Sprintf("nats-%d reaches nats-%d, not nats-%d", a+1, b+1, c+1)
		p.start = time.Now()
		s.net.cutPair(a, c)
	}
	note(p.kind, "cut %s for %s (matchers on the cut side: %v)", p.what, hold.Round(time.Millisecond), p.workers)
	time.Sleep(hold)
	s.net.heal()
	p.end = time.Now()
	s.partitions = append(s.partitions, p)
}

// natsClients are the services that connect to NATS (the game servers do not).
func (s *system) natsClients() []*member {
	var out []*member
	for _, m := range s.others {
		if m.kind != "game" {
			out = append(out, m)
		}
	}
	return out
}

// matchersOn are the matchers with a connection to node i now.
func (s *system) matchersOn(i int) []string {
	var out []string
	for _, m := range s.others {
		if m.kind == "matcher" && slices.Contains(s.net.attached(m.Name), i) {
			out = append(out, m.Name)
		}
	}
	return out
}
