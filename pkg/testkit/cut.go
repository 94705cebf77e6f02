package testkit

// A Link is a TCP proxy on loopback in front of one address (a NATS
// node's client port, or its cluster port for a route). A cut HOLDS
// bytes: each direction's pump stops before writing what it read, so
// nothing is forwarded and nothing is closed, as in a partition (a
// half-open connection that says nothing until a ping or a write deadline
// gives up on it), unlike a kill, which both ends see at once. A heal
// resumes forwarding: what was held goes on, in order. Drop closes every
// connection, losing what was held (the client sees a disconnect).

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
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

// Link forwards each connection it accepts to its target.
type Link struct {
	target string
	ln     net.Listener
	gates  [2]gate // [0] Up, [1] Down
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

// NewLink listens on a loopback port of its own and forwards to target
// until the test ends.
func NewLink(tb testing.TB, target string) *Link {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	l := &Link{target: target, ln: ln, conns: map[*pair]struct{}{}}
	l.wg.Go(l.accept)
	tb.Cleanup(l.close)
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

// Drop closes every connection the link forwards, losing what a cut
// holds. New connections are accepted (and held while cut).
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

// close stops accepting, drops every connection and waits for the pumps.
func (l *Link) close() {
	_ = l.ln.Close()
	l.Drop()
	l.wg.Wait()
}

func (l *Link) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return // closed
		}
		t, err := net.Dial("tcp", l.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p := &pair{c: c, t: t, gone: make(chan struct{})}
		l.mu.Lock()
		l.conns[p] = struct{}{}
		l.mu.Unlock()
		l.wg.Go(func() { l.forward(p) })
	}
}

func (l *Link) forward(p *pair) {
	var pumps sync.WaitGroup
	pumps.Go(func() { l.pump(p, p.c, p.t, &l.gates[0]) })
	pumps.Go(func() { l.pump(p, p.t, p.c, &l.gates[1]) })
	pumps.Wait()
	p.close()
	l.mu.Lock()
	delete(l.conns, p)
	l.mu.Unlock()
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
