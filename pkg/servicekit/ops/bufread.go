package ops

import (
	"net"
	"sync"
)

// ReadBuffered wraps ln so that the small reads of a cleartext HTTP/2
// connection are served from a buffer filled by one read of the socket.
// Go's HTTP/2 server reads its frames straight from the connection, a
// 9-byte header and then the payload, so that over cleartext HTTP/2
// (WithCleartextHTTP2: no TLS layer buffering beneath it) every frame
// cost two read system calls, about seven a ticket over `make perf`'s
// HTTP leg (BENCHMARKS.md, "Eleventh round"); HTTP/1.1 and TLS buffer
// their reads already.
//
// Only a connection that opens with HTTP/2's preface is buffered, and it
// holds its buffer only while a read waits or bytes are left in it: an
// HTTP/1.1 client, waiting on a stream or idle, costs no buffer, nor
// does a connection that sends nothing.
func ReadBuffered(ln net.Listener) net.Listener { return bufListener{ln} }

// readBufSize is the buffer's size: net/http's own per-connection read
// buffer.
const readBufSize = 4 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

type bufListener struct{ net.Listener }

func (l bufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &bufConn{Conn: c}, nil
}

// bufConn is a connection whose reads go through a pooled buffer. Its
// reads are one goroutine's at a time, as net.Conn's callers make them.
type bufConn struct {
	net.Conn
	// seen counts the bytes read of HTTP/2's preface, up to its length
	// once all of it was (then the connection is buffered); -1 once it
	// opened otherwise.
	seen int
	buf  *[]byte // nil while nothing is buffered
	r, w int     // the buffered bytes are (*buf)[r:w]
	err  error   // the socket's error, returned once the buffer is drained
}

// h2Preface opens every HTTP/2 connection with prior knowledge.
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

func (c *bufConn) Read(p []byte) (int, error) {
	if c.seen < len(h2Preface) {
		n, err := c.Conn.Read(p)
		c.watch(p[:n])
		return n, err
	}
	if c.buf != nil {
		n := copy(p, (*c.buf)[c.r:c.w])
		c.r += n
		if c.r == c.w {
			readBufs.Put(c.buf)
			c.buf = nil
		}
		return n, nil
	}
	if c.err != nil {
		err := c.err
		c.err = nil
		return 0, err
	}
	if len(p) >= readBufSize {
		return c.Conn.Read(p)
	}
	b := readBufs.Get().(*[]byte)
	n, err := c.Conn.Read(*b)
	m := copy(p, (*b)[:n])
	if m == n {
		readBufs.Put(b)
		return m, err
	}
	// More came than asked for: kept for the next reads, and an error
	// the socket gave with it (EOF) after them.
	c.buf, c.r, c.w, c.err = b, m, n, err
	return m, nil
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

// CloseWrite half-closes the connection where it can, as net/http does
// to an HTTP/1.1 client it refuses (its closeWriter).
func (c *bufConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
