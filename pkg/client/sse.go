package client

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// sseReader reads Server-Sent Events (the WHATWG event-stream format, lines
// ending in LF or CRLF) in bounded memory: a 4 KiB read buffer, and an
// event's lines and data kept only up to max bytes, so a server that sends
// one endless line or event costs max, not all it sends.
type sseReader struct {
	r    *bufio.Reader
	max  int
	line []byte // a line longer than the read buffer, put together
	data []byte
	// last is the stream's last event id, kept across events as the
	// format says (an event without an id field has the one before): a
	// status event's id, 1-3, or -1 for any other id.
	last int
}

// event is one dispatched event: status says its name is
// ticketapi.EventStatus (the only one read: nothing else is kept, so no
// event costs an allocation of its name or id).
type event struct {
	status bool
	id     int
	data   []byte
}

func newSSEReader(r io.Reader, max int) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 4<<10), max: max}
}

// next is the next event with data; an event cut off by the end of the
// stream is no event, and the error is the read's.
func (s *sseReader) next() (event, error) {
	s.data = s.data[:0]
	status, hasData := false, false
	for {
		line, err := s.readLine()
		if err != nil {
			return event{}, err
		}
		if len(line) == 0 {
			if hasData {
				return event{status: status, id: s.last, data: s.data}, nil
			}
			status = false
			continue
		}
		if line[0] == ':' {
			continue // a comment: the heartbeat
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			if hasData {
				s.data = append(s.data, '\n')
			}
			if len(s.data)+len(value) > s.max {
				return event{}, fmt.Errorf("quickmatch events: an event over %d bytes: %w", s.max, ErrTooLarge)
			}
			s.data, hasData = append(s.data, value...), true
		case "id":
			s.last = statusEventID(value)
		case "event":
			status = string(value) == ticketapi.EventStatus
		}
	}
}

// readLine is the next line without its end; it stays valid until the
// next call.
func (s *sseReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		frag, err := s.r.ReadSlice('\n')
		if len(s.line)+len(frag) > s.max+2 {
			return nil, fmt.Errorf("quickmatch events: a line over %d bytes: %w", s.max, ErrTooLarge)
		}
		if err == bufio.ErrBufferFull {
			s.line = append(s.line, frag...)
			continue
		}
		if err != nil {
			return nil, err // a line the stream cut off is dropped
		}
		line := frag
		if len(s.line) > 0 {
			s.line = append(s.line, frag...)
			line = s.line
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
		return line, nil
	}
}

// statusEventID reads an event id: one of the values Last-Event-ID may
// take (EventIDQueued to EventIDTerminal), else -1.
func statusEventID(id []byte) int {
	if len(id) == 1 && id[0] >= '0'+ticketapi.EventIDQueued && id[0] <= '0'+ticketapi.EventIDTerminal {
		return int(id[0] - '0')
	}
	return -1
}

// idleWatch calls onIdle once a period (IdleTimeout) passed
// in which its reader brought nothing: a stream is given up on after one
// to two periods of silence. Reads only bump a counter, which costs less
// than moving a timer on each of them; the timer looks at it once per
// period, on its own goroutine.
type idleWatch struct {
	reads atomic.Uint64
	// stopped keeps a look that races stop from arming the timer again.
	stopped atomic.Bool
	seen    uint64 // reads at the last look; the timer's goroutine only
	period  time.Duration
	timer   *time.Timer
	onIdle  func()
}

func watchIdle(period time.Duration, onIdle func()) *idleWatch {
	w := &idleWatch{period: period, onIdle: onIdle}
	w.timer = time.AfterFunc(period, w.look)
	return w
}

func (w *idleWatch) look() {
	if w.stopped.Load() {
		return
	}
	if n := w.reads.Load(); n != w.seen {
		w.seen = n
		w.timer.Reset(w.period)
		return
	}
	w.onIdle()
}

func (w *idleWatch) stop() {
	w.stopped.Store(true)
	w.timer.Stop()
}

// idleReader tells its watch of every read that brought something.
type idleReader struct {
	r io.Reader
	w *idleWatch
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.w.reads.Add(1)
	}
	return n, err
}
