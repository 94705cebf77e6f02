package client

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzSSEReader: whatever a server sends, the reader neither panics nor
// hands out an event over its bound, and ends with an error.
func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("id: 1\nevent: status\ndata: {\"status\":\"queued\"}\n\n: ping\n\n"))
	f.Add([]byte("id: 3\r\nevent: status\r\ndata: a\r\ndata: b\r\n\r\n"))
	f.Add([]byte("data: " + string(bytes.Repeat([]byte("x"), 300)) + "\n\n"))
	f.Add([]byte("id\nevent\ndata\n\nretry: 10\n:\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := newSSEReader(bytes.NewReader(in), 256)
		for range len(in) + 1 {
			ev, err := r.next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("error %v", err)
				}
				return
			}
			if len(ev.data) > 256 || ev.id < -1 || ev.id > 3 {
				t.Fatalf("event %+v", ev)
			}
		}
		t.Fatal("more events than bytes")
	})
}
