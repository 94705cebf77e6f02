package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

// flushCounter is a response writer that counts its flushes.
type flushCounter struct {
	*httptest.ResponseRecorder
	flushes int
}

func (f *flushCounter) Flush() { f.flushes++ }

// Each event but the terminal one is flushed as it is written; the
// terminal one is written and left to the stream's end, which the
// handler reaches at once: over HTTP/2 one DATA frame with END_STREAM
// instead of two frames and two writes (BENCHMARKS.md, "Eleventh round").
func TestSSETerminalEventRidesTheStreamsEnd(t *testing.T) {
	w := &flushCounter{ResponseRecorder: httptest.NewRecorder()}
	sw := &sseWriter{ctx: t.Context(), w: w, flusher: w, rc: http.NewResponseController(w), timeout: time.Second, ref: &refresher{a: &API{}}}
	view := tickets.View{TicketID: "t1", Status: events.StatusQueued}
	for i, st := range []events.Status{events.StatusQueued, events.StatusMatched} {
		view.Status = st
		if sw.send(view) {
			t.Fatalf("%s: done", st)
		}
		if w.flushes != i+1 {
			t.Fatalf("after %s: %d flushes, want %d", st, w.flushes, i+1)
		}
	}
	view.Status = events.StatusAssigned
	if !sw.send(view) {
		t.Fatal("assigned: not done")
	}
	if w.flushes != 2 || !strings.Contains(w.Body.String(), `"status":"assigned"`) {
		t.Fatalf("assigned: %d flushes, body %q; want it written, not flushed", w.flushes, w.Body.String())
	}
}
