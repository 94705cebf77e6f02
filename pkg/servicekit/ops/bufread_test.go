package ops

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// scriptConn answers each Read with the next of its chunks, all of it
// whatever the size asked (a socket holding that much), and then err;
// it counts the reads.
type scriptConn struct {
	net.Conn
	chunks [][]byte
	err    error // with the last chunk
	reads  int
}

func (c *scriptConn) Read(p []byte) (int, error) {
	c.reads++
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	if n < len(c.chunks[0]) {
		c.chunks[0] = c.chunks[0][n:]
		return n, nil
	}
	c.chunks = c.chunks[1:]
	if len(c.chunks) == 0 {
		return n, c.err
	}
	return n, nil
}

// A burst read in small pieces (an HTTP/2 frame's header, then its
// payload) after HTTP/2's preface costs the socket one read, and comes
// out whole and in order; an error the socket gave with the burst comes
// after the last of it. Reads as large as the buffer go to the socket.
func TestReadBufferedReadsABurstOnce(t *testing.T) {
	burst := bytes.Repeat([]byte("0123456789abcdef"), 20) // 320 bytes
	sock := &scriptConn{chunks: [][]byte{[]byte(h2Preface[:14]), []byte(h2Preface[14:]), burst}, err: io.EOF}
	c := &bufConn{Conn: sock}
	if _, err := io.ReadFull(c, make([]byte, len(h2Preface))); err != nil {
		t.Fatal(err)
	}
	reads := sock.reads
	var got []byte
	for _, size := range []int{9, 50, 9, 200, 9, 100} {
		p := make([]byte, size)
		n, err := io.ReadFull(c, p)
		got = append(got, p[:n]...)
		if err != nil {
			if !bytes.Equal(got, burst) {
				t.Fatalf("read %d bytes then %v; want the %d of the burst first", len(got), err, len(burst))
			}
			break
		}
	}
	if !bytes.Equal(got, burst) {
		t.Fatalf("read %q, want %q", got, burst)
	}
	if n := sock.reads - reads; n != 1 {
		t.Fatalf("the socket was read %d times for one burst, want 1", n)
	}
	if n, err := c.Read(make([]byte, 9)); n != 0 || err != io.EOF {
		t.Fatalf("after the burst: %d, %v; want the socket's EOF", n, err)
	}

	sock = &scriptConn{chunks: [][]byte{[]byte(h2Preface), bytes.Repeat([]byte("y"), readBufSize)}}
	c = &bufConn{Conn: sock}
	if _, err := io.ReadFull(c, make([]byte, len(h2Preface))); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Read(make([]byte, readBufSize)); n != readBufSize || c.buf != nil {
		t.Fatalf("a full-size read: %d bytes, buffer made %v; want it straight from the socket", n, c.buf != nil)
	}
	before := sock.reads
	if n, err := c.Read(nil); n != 0 || err != nil || sock.reads != before {
		t.Fatalf("an empty read: %d, %v, the socket read %d times; want 0, nil at once", n, err, sock.reads-before)
	}
}

// Once closed, a connection hands on none of the bytes it buffered:
// Go's HTTP/2 server reads on after it closed a connection, until a read
// fails, and would act on frames whose client never hears back (review
// R11).
func TestReadBufferedGivesNothingAfterClose(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	c := &bufConn{Conn: server}
	go func() { _, _ = client.Write([]byte(h2Preface + "0123456789abcdefghij")) }()
	if _, err := io.ReadFull(c, make([]byte, len(h2Preface))); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 9)); err != nil {
		t.Fatal(err)
	}
	if c.r == c.w {
		t.Fatal("nothing left buffered: the test tests nothing")
	}
	c.Close()
	if n, err := c.Read(make([]byte, 9)); n != 0 || err == nil {
		t.Fatalf("after Close: %d bytes, %v; want none and an error", n, err)
	}
}

// A connection that opens with anything but HTTP/2's preface (HTTP/1.1,
// however it starts) is read straight from the socket, and never holds a
// buffer: a waiting HTTP/1.1 client costs none.
func TestReadBufferedLeavesHTTP1Alone(t *testing.T) {
	for _, first := range []string{"GET / HTTP/1.1\r\n\r\n", "PRI * HTTP/1.1\r\n", "P"} {
		sock := &scriptConn{chunks: [][]byte{[]byte(first), bytes.Repeat([]byte("z"), 100)}}
		c := &bufConn{Conn: sock}
		var got int
		for {
			n, err := c.Read(make([]byte, 9))
			got += n
			if c.buf != nil {
				t.Fatalf("opened with %q: a buffer held", first)
			}
			if err != nil {
				break
			}
		}
		if want := len(first) + 100; got != want || sock.reads < want/9 {
			t.Fatalf("opened with %q: %d bytes in %d reads; want %d, a read each", first, got, sock.reads, want)
		}
	}
}

// Over ReadBuffered a server answers HTTP/1.1 and cleartext HTTP/2
// (prior knowledge, whose preface net/http reads before it hands the
// connection over), bodies intact, several requests on one connection.
func TestReadBufferedServesHTTP1AndCleartextHTTP2(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write([]byte(r.Proto + " " + string(b)))
	})
	done := make(chan error, 1)
	go func() {
		done <- Serve(t.Context(), NewServer(echo, WithCleartextHTTP2(100)), ReadBuffered(ln), time.Second)
	}()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	url := "http://" + ln.Addr().String() + "/"
	h2 := &http.Protocols{}
	h2.SetUnencryptedHTTP2(true)
	for _, tc := range []struct {
		proto     string
		transport *http.Transport
	}{
		{"HTTP/1.1", &http.Transport{}},
		{"HTTP/2.0", &http.Transport{Protocols: h2}},
	} {
		client := &http.Client{Transport: tc.transport}
		for i := range 3 {
			body := strings.Repeat("b", 10+i*3000) // within one buffer, and past it
			res, err := client.Post(url, "text/plain", strings.NewReader(body))
			if err != nil {
				t.Fatalf("%s: %v", tc.proto, err)
			}
			got, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if want := tc.proto + " " + body; string(got) != want {
				t.Fatalf("%s request %d: answered %d bytes %.40q, want %d bytes %.40q", tc.proto, i, len(got), got, len(want), want)
			}
		}
		tc.transport.CloseIdleConnections()
	}
}
