package chaos

// A link is a TCP proxy on loopback in front of one NATS address (a
// node's client port, or its cluster port for a route). The harness cuts
// and heals it. A cut HOLDS bytes: each direction's pump stops before
// writing what it read, so nothing is forwarded, nothing is closed, and
// once the kernel's buffers fill the sender blocks. That is what a cloud
// partition looks like from both ends (a half-open connection that says
// nothing until a ping or write deadline gives up on it), unlike a kill,
// which both ends see at once.
//
// A heal resumes forwarding: the held bytes, and a close read meanwhile,
// go on in order. Dropping the held connections at the heal would be
// simpler but would tell both ends at once that something happened, as a
// partition that heals before TCP gives up never does; an end that gave up
// meanwhile (closed its socket on a ping timeout) gets the late bytes as a
// reset, as it would from a real network.

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// direction of a link: up is from the connecting side (a service, or the
// node that dials the route) to the address behind the link; down is back.
type direction int

const (
	up direction = 1 << iota
	down
	both = up | down
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

// wait returns once the gate is open, or false once done is closed.
func (g *gate) wait(done <-chan struct{}) bool {
	g.mu.Lock()
	cut, healed := g.cut, g.healed
	g.mu.Unlock()
	if !cut {
		return true
	}
	select {
	case <-healed:
		return true
	case <-done:
		return false
	}
}

// link accepts on 127.0.0.1 and forwards each connection to target.
type link struct {
	name   string
	target string
	ln     net.Listener
	gates  [2]gate // [0] up, [1] down
	done   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{} // both ends of every forwarded connection
	active int                   // forwarded connections not yet ended
}

// newLink listens on a port of its own and forwards to target.
func newLink(name, target string) (*link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &link{name: name, target: target, ln: ln, done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	l.wg.Go(l.accept)
	return l, nil
}

// addr is where to connect to reach target through the link.
func (l *link) addr() string { return l.ln.Addr().String() }

// cut holds the directions d of every connection, present and future.
func (l *link) cut(d direction) {
	for i := range l.gates {
		if d&(1<<i) != 0 {
			l.gates[i].close()
		}
	}
}

// heal resumes forwarding in both directions.
func (l *link) heal() {
	for i := range l.gates {
		l.gates[i].open()
	}
}

// connected is how many forwarded connections have not ended, held or not.
func (l *link) connected() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active
}

// close stops accepting, closes every connection and waits for the pumps.
func (l *link) close() {
	close(l.done)
	l.ln.Close()
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

func (l *link) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return // closed
		}
		l.wg.Go(func() { l.forward(c) })
	}
}

// forward connects c to the target. A new connection made while the link
// is cut is held like the others: its first bytes (NATS's INFO) wait, and
// the client's connect timeout gives up as it would on a dropped SYN.
func (l *link) forward(c net.Conn) {
	t, err := net.DialTimeout("tcp", l.target, 2*time.Second)
	if err != nil { // the node is down: refuse, as its port would, once the cut lets the refusal through
		l.gates[1].wait(l.done)
		c.Close()
		return
	}
	if !l.track(c, t) {
		return
	}
	var pumps sync.WaitGroup
	pumps.Go(func() { l.pump(c, t, &l.gates[0]) })
	pumps.Go(func() { l.pump(t, c, &l.gates[1]) })
	pumps.Wait()
	l.mu.Lock()
	delete(l.conns, c)
	delete(l.conns, t)
	l.active--
	l.mu.Unlock()
	c.Close()
	t.Close()
}

// track registers both ends, or closes them if the link is closing.
func (l *link) track(c, t net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		c.Close()
		t.Close()
		return false
	default:
	}
	l.conns[c], l.conns[t] = struct{}{}, struct{}{}
	l.active++
	return true
}

// pump copies src to dst, waiting at g before each write and before
// passing on src's end: a close read during a cut is held too.
func (l *link) pump(src, dst net.Conn, g *gate) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !g.wait(l.done) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close() // the other end is gone: end both directions
				dst.Close()
				return
			}
		}
		if err != nil {
			if !g.wait(l.done) {
				return
			}
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				_ = tc.CloseWrite() // pass on the half-close
				return
			}
			src.Close() // a reset: end both directions
			dst.Close()
			return
		}
	}
}
