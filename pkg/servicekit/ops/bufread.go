package ops

import (
	"net"
	"sync/atomic"
)

// ReadBuffered wraps ln, a plain TCP listener (under a TLS one net/http
// would no longer see its *tls.Conn), so that the small reads of a
// cleartext HTTP/2 connection are served from a buffer filled by one
// read of the socket. Go's HTTP/2 server reads its frames straight from
// the connection, a 9-byte header and then the payload, so that over
// cleartext HTTP/2 (WithCleartextHTTP2: no TLS layer buffering beneath
// it) every frame cost two read system calls, about seven a ticket over
// `make perf`'s HTTP leg (BENCHMARKS.md, "Eleventh round"); HTTP/1.1 and
// TLS buffer their reads already.
//
// Only a connection that opens with HTTP/2's preface gets a buffer, of
// its own, for as long as it is open (its server always has a read
// waiting): 4 KiB per HTTP/2 connection, which carries many streams, as
// net/http holds for each HTTP/1.1 one. An HTTP/1.1 connection, and one
// that sends nothing or only part of the preface, gets none.
func ReadBuffered(ln net.Listener) net.Listener { return bufListener{ln} }

// readBufSize is the buffer's size: net/http's own per-connection read
// buffer.
const readBufSize = 4 << 10

type bufListener struct{ net.Listener }

func (l bufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &bufConn{Conn: c}, nil
}

// bufConn is a connection whose reads, once it opened with HTTP/2's
// preface, go through its buffer. Its reads must not overlap, as neither
// net/http's nor its HTTP/2 server's do; Close may come at any time.
type bufConn struct {
	net.Conn
	// seen counts the bytes read of HTTP/2's preface, up to its length
	// once all of it was (then the connection is buffered); -1 once it
	// opened otherwise.
	seen   int
	buf    []byte // made at the first buffered read
	r, w   int    // the buffered bytes are buf[r:w]
	err    error  // the socket's error, returned once the buffer is drained
	closed atomic.Bool
}

// h2Preface opens every HTTP/2 connection with prior knowledge.
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

func (c *bufConn) Read(p []byte) (int, error) {
	switch {
	case c.closed.Load():
		// Nothing buffered is handed on once closed: HTTP/2's server
		// reads on after it closed a connection (a write failed) until a
		// read fails, and would act on frames its client never hears of.
		return 0, net.ErrClosed
	case len(p) == 0:
		return 0, nil
	case c.seen < len(h2Preface):
		n, err := c.Conn.Read(p)
		c.watch(p[:n])
		return n, err
	case c.r < c.w:
		n := copy(p, c.buf[c.r:c.w])
		c.r += n
		return n, nil
	case c.err != nil:
		err := c.err
		c.err = nil
		return 0, err
	case len(p) >= readBufSize:
		return c.Conn.Read(p)
	}
	if c.buf == nil {
		c.buf = make([]byte, readBufSize)
	}
	n, err := c.Conn.Read(c.buf)
	m := copy(p, c.buf[:n])
	if m < n {
		// More came than asked for: kept for the next reads, and any
		// error the socket gave with it after them.
		c.r, c.w, c.err = m, n, err
		return m, nil
	}
	return m, err
}

// watch follows the connection's first bytes, read: HTTP/2's preface,
// or anything else.
func (c *bufConn) watch(read []byte) {
	if c.seen < 0 || len(read) == 0 {
		return
	}
	want := h2Preface[c.seen:]
	k := min(len(read), len(want))
	if string(read[:k]) != want[:k] {
		c.seen = -1
		return
	}
	c.seen += k
}

func (c *bufConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

// CloseWrite half-closes the connection where it can, as net/http does
// to an HTTP/1.1 client it refuses (its closeWriter).
func (c *bufConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
