package api_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestWebSocketReadsNoRecord: a /ws/events ticket, created and followed
// on one connection, is followed from its creation, as its event stream
// is on the frontend that created it (follow): its record is not read
// back from the tickets bucket. Before, every WebSocket ticket cost a
// read of the record it had just written (a JetStream API request, #20's
// seventeenth round).
func TestWebSocketReadsNoRecord(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	// ">" on the frontend's own connection: Seen's marker is heard after
	// every request the frontend sent before it.
	heard := testkit.Collect(t, e.nc, ">")
	c, read := dialEvents(t, e, "player_id=wren&skill=1650&region=eu")
	first := read()
	id, _ := first["ticket_id"].(string)
	if first["status"] != "queued" || id == "" {
		t.Fatalf("first %v", first)
	}
	e.allocate(t, id, "wren")
	for v := read(); v["status"] != "assigned"; v = read() {
		if v["status"] != "queued" && v["status"] != "matched" {
			t.Fatalf("then %v", v)
		}
	}
	// The close frame is the handler's last word: a read it made after
	// the outcome was sent came before it, and so before the marker.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ce *websocket.CloseError
	if _, _, err := c.ReadMessage(); !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("after the assignment: %v, want close 1000", err)
	}
	bucket := "KV_" + e.subj.TicketsBucket()
	var reads []string
	for _, m := range testkit.Seen(t, e.nc, heard) {
		if strings.HasPrefix(m.Subject, "$JS.API.DIRECT.GET."+bucket+".") || strings.HasPrefix(m.Subject, "$JS.API.STREAM.MSG.GET."+bucket) {
			reads = append(reads, m.Subject)
		}
	}
	if len(reads) != 0 {
		t.Fatalf("the ticket's record read back %d times: %v", len(reads), reads)
	}
}

// TestWebSocketOfATicketLetGo: a WebSocket whose ticket the tracker lets
// go of without a terminal result reads where the ticket stands (queued:
// the client is told to poll, 1013) rather than ending in a panic of the
// handler over a record the creation made (review of a9348d4: a record
// without players, and tickets.Service.View reads the first's results).
func TestWebSocketOfATicketLetGo(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	c, read := dialEvents(t, e, "player_id=wren&skill=1650&region=eu")
	first := read()
	id, _ := first["ticket_id"].(string)
	if first["status"] != "queued" || id == "" {
		t.Fatalf("first %v", first)
	}
	e.tracker.Untrack(t.Context(), id)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseTryAgainLater || !strings.Contains(ce.Text, "lost track") {
		t.Fatalf("%v, want close 1013, lost track", err)
	}
}
