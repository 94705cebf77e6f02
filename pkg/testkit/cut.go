package testkit

// A Link is a TCP proxy on loopback in front of one address (a NATS
// node's client port, or its cluster port for a route). A cut HOLDS
// bytes: each direction's pump stops before writing what it read, so
// nothing is forwarded and nothing is closed, as in a partition (a
// half-open connection that says nothing until a ping or a write deadline
// gives up on it), unlike a kill, which both ends see at once. A heal
// resumes forwarding: what was held goes on, in order (dropping the held
// connections at the heal would tell both ends at once that something
// happened, as a partition that heals before TCP gives up never does; an
// end that gave up meanwhile gets the late bytes as a reset, as from a
// real network). Drop closes every connection, losing what was held (the
// client sees a disconnect).
//
// The chaos harness (dev/chaos) puts one in front of every route and
// service connection of its NATS cluster; tests put one where they need.

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Direction of a link: Up is from the side that connects to the address
// behind the link; Down is back.
type Direction int

// The directions a link cuts.
const (
	Up Direction = 1 << iota
	Down
	Both = Up | Down
)

// gate holds one direction while it is cut.
type gate struct {
	mu     sync.Mutex
	cut    bool
	healed chan struct{} // closed at the heal of the current cut
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.cut {
		g.cut, g.healed = true, make(chan struct{})
	}
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cut {
		g.cut = false
		close(g.healed)
	}
}

// wait returns true once the gate is open, or false once gone is closed.
func (g *gate) wait(gone <-chan struct{}) bool {
	g.mu.Lock()
	cut, healed := g.cut, g.healed
	g.mu.Unlock()
	if !cut {
		return true
	}
	select {
	case <-healed:
		return true
	case <-gone:
		return false
	}
}

// dialTimeout bounds a dial of the target, so that a target that does not
// answer ends the connection made to the link instead of holding it for
// the kernel's connect timeout (minutes).
const dialTimeout = 2 * time.Second

// Link forwards each connection it accepts to its target.
type Link struct {
	target string
	ln     net.Listener
	gates  [2]gate       // [0] Up, [1] Down
	done   chan struct{} // closed by Close: ends held refusals, refuses new pairs
	closed sync.Once
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[*pair]struct{}
}

// pair is one forwarded connection: the accepted end and the dialled one.
// gone closes when it is dropped, so that pumps held by a cut end.
type pair struct {
	c, t net.Conn
	once sync.Once
	gone chan struct{}
}

func (p *pair) close() {
	p.once.Do(func() {
		close(p.gone)
		_ = p.c.Close()
		_ = p.t.Close()
	})
}

// StartLink listens on a loopback port of its own and forwards to target
// until Close.
func StartLink(target string) (*Link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &Link{target: target, ln: ln, done: make(chan struct{}), conns: map[*pair]struct{}{}}
	l.wg.Go(l.accept)
	return l, nil
}

// NewLink is StartLink until the test ends.
func NewLink(tb testing.TB, target string) *Link {
	tb.Helper()
	l, err := StartLink(target)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(l.Close)
	return l
}

// Addr is where to connect to reach the target through the link.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// URL is Addr as a NATS URL.
func (l *Link) URL() string { return "nats://" + l.Addr() }

// Cut holds the directions d of every connection, present and future.
func (l *Link) Cut(d Direction) {
	for i := range l.gates {
		if d&(1<<i) != 0 {
			l.gates[i].close()
		}
	}
}

// Heal resumes forwarding in both directions.
func (l *Link) Heal() {
	for i := range l.gates {
		l.gates[i].open()
	}
}

// CutUntil cuts every direction now and heals once heal is closed (a
// LogWatch's Seen: the code under test said it met the cut), or not at
// all if the test ends first.
func (l *Link) CutUntil(tb testing.TB, heal <-chan struct{}) {
	l.Cut(Both)
	go func() {
		select {
		case <-heal:
			l.Heal()
		case <-tb.Context().Done():
		}
	}()
}

// Drop closes every connection the link forwards, losing what a cut
// holds. New connections are accepted (and held while cut). A held
// refusal (see forward) is not a forwarded connection: it waits on.
func (l *Link) Drop() {
	l.mu.Lock()
	ps := make([]*pair, 0, len(l.conns))
	for p := range l.conns {
		ps = append(ps, p)
	}
	l.mu.Unlock()
	for _, p := range ps {
		p.close()
	}
}

// Connected is how many forwarded connections have not ended.
func (l *Link) Connected() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// Close stops accepting, closes every connection (held refusals too) and
// waits for the pumps. A second Close only waits.
func (l *Link) Close() {
	l.closed.Do(func() {
		close(l.done)
		_ = l.ln.Close()
		l.Drop()
	})
	l.wg.Wait()
}

func (l *Link) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return // closed
		}
		l.wg.Go(func() { l.forward(c) })
	}
}

// forward connects c to the target (each in a goroutine of its own, so
// that a slow dial holds no other connection). A connection made while the
// link is cut is held like the others: its first bytes (NATS's INFO) wait,
// and the client's connect timeout gives up as on a dropped SYN. A target
// that cannot be dialled (the node is down) is refused to c as its port
// would, but only once the cut lets the refusal through: behind a
// partition, a node that is down looks like one that does not answer.
func (l *Link) forward(c net.Conn) {
	t, err := net.DialTimeout("tcp", l.target, dialTimeout)
	if err != nil {
		l.gates[1].wait(l.done)
		_ = c.Close()
		return
	}
	p := &pair{c: c, t: t, gone: make(chan struct{})}
	if !l.track(p) {
		p.close()
		return
	}
	var pumps sync.WaitGroup
	pumps.Go(func() { l.pump(p, p.c, p.t, &l.gates[0]) })
	pumps.Go(func() { l.pump(p, p.t, p.c, &l.gates[1]) })
	pumps.Wait()
	p.close()
	l.mu.Lock()
	delete(l.conns, p)
	l.mu.Unlock()
}

// track registers p, or refuses it once Close has begun: a pair it
// registered later would outlive Close's Drop and hold its wait forever.
func (l *Link) track(p *pair) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return false
	default:
	}
	l.conns[p] = struct{}{}
	return true
}

// pump copies src to dst, waiting at g before each write and before
// passing on src's end: a close read during a cut is held too.
func (l *Link) pump(p *pair, src, dst net.Conn, g *gate) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !g.wait(p.gone) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				p.close() // the other end is gone: end both directions
				return
			}
		}
		if err != nil {
			if !g.wait(p.gone) {
				return
			}
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				_ = tc.CloseWrite() // pass on the half-close
				return
			}
			p.close() // a reset: end both directions
			return
		}
	}
}
