package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/queue"
)

// withQueue replaces e's frontend with one that shows the queue bucket's
// figures, and returns a function that writes a shard's figures for a
// mode and waits until the frontend shows them.
func withQueue(t *testing.T, e *env) (put func(region, tier, mode string, wait time.Duration)) {
	t.Helper()
	w, err := queue.New(t.Context(), e.js, e.subj, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, w.Run)
	e.http.Close()
	// Refreshes looked at every 20ms: a test sees one as soon as the
	// figures it wrote are shown.
	e.http = newFrontend(t, e, options{api: api.Config{Queue: w, WaitRefresh: 20 * time.Millisecond}})
	kv, err := e.js.KeyValue(t.Context(), e.subj.QueueBucket())
	if err != nil {
		t.Fatal(err)
	}
	return func(region, tier, mode string, wait time.Duration) {
		t.Helper()
		key, err := events.QueueKey(region, tier, mode)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(events.QueueStats{SchemaVersion: events.SchemaVersion, Region: region, Tier: tier, Mode: mode,
			Waiting: 4, ExpectedWaitMS: wait.Milliseconds(), Matched: 10, UpdatedAt: time.Now().UTC()})
		if _, err := kv.Put(t.Context(), key, data); err != nil {
			t.Fatal(err)
		}
		shard := events.Shard{Region: region, Tier: tier}
		testkit.Eventually(t, 5*time.Second, func() bool { d, ok := w.ExpectedWait(shard, mode); return ok && d == wait },
			"figures of %s not seen", key)
	}
}

// A queued ticket's view carries its shard's expected wait for its mode,
// from the queue bucket: in the 202, on GET (and it follows the figures),
// and in the first SSE event, whichever instance serves it. A ticket
// whose mode has no figures, or that is no longer queued, carries none.
func TestTicketViewCarriesExpectedWait(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	put := withQueue(t, e)
	put("eu", "gold", "1v1", 12500*time.Millisecond)

	code, body := e.post(t, `{"player_id":"alice","mode":"1v1","skill":1650,"region":"eu"}`, "")
	if code != http.StatusAccepted || body["expected_wait_ms"] != 12500.0 {
		t.Fatalf("POST = %d %v, want expected_wait_ms 12500", code, body)
	}
	id := body["ticket_id"].(string)
	if _, body := e.get(t, "/v1/tickets/"+id); body["expected_wait_ms"] != 12500.0 {
		t.Fatalf("GET = %v, want expected_wait_ms 12500", body)
	}
	put("eu", "gold", "1v1", 31*time.Second)
	if _, body := e.get(t, "/v1/tickets/"+id); body["expected_wait_ms"] != 31000.0 {
		t.Fatalf("GET after new figures = %v, want expected_wait_ms 31000", body)
	}
	// The first event, from the instance that created the ticket (its
	// tracker) and from another (JetStream).
	for _, where := range []string{"the instance that created it", "another instance"} {
		if got := firstEventData(t, e, id); got["status"] != "queued" || got["expected_wait_ms"] != 31000.0 {
			t.Fatalf("first event from %s: %v", where, got)
		}
		put = withQueue(t, e)
		put("eu", "gold", "1v1", 31*time.Second)
	}
	_, other := e.post(t, `{"player_id":"bob","mode":"2v2","skill":1650,"region":"eu"}`, "")
	if _, has := other["expected_wait_ms"]; has || other["status"] != "queued" {
		t.Fatalf("2v2 ticket without figures = %v", other)
	}

	e.allocate(t, id, "alice")
	if _, body := e.get(t, "/v1/tickets/"+id); body["status"] != "assigned" || body["expected_wait_ms"] != nil {
		t.Fatalf("assigned ticket = %v, want no expected wait", body)
	}
}

// The events WebSocket's queued message carries the expected wait; the
// ones after it (cancelled here) do not.
func TestEventsWebSocketCarriesExpectedWait(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	put := withQueue(t, e)
	put("asia", "platinum", "1v1", 4*time.Second)
	c, read := dialEvents(t, e, "player_id=rich&skill=2500&region=asia&mode=1v1")
	if first := read(); first["status"] != "queued" || first["expected_wait_ms"] != 4000.0 {
		t.Fatalf("first %v, want expected_wait_ms 4000", first)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"cancel"}`)); err != nil {
		t.Fatal(err)
	}
	if v := read(); v["status"] != "cancelled" || v["expected_wait_ms"] != nil {
		t.Fatalf("after cancel: %v", v)
	}
}

// firstEventData is the data of the first SSE event of ticket id on e's
// frontend.
func firstEventData(t *testing.T, e *env, id string) map[string]any {
	t.Helper()
	r, closeIt := openEvents(t, e, id)
	defer closeIt()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if data, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "data: "); ok {
			var v map[string]any
			if err := json.Unmarshal([]byte(data), &v); err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
}

// A queued ticket's client is sent its expected wait again when it moves
// by more than a quarter, in a queued event of the same id 1 (SSE) or a
// queued message (/ws/events); a small move is not sent. A client that
// reconnects with Last-Event-ID 1 is not sent queued again, only the
// next move, measured from the figure of its reconnection.
func TestExpectedWaitRefreshedWhileQueued(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	put := withQueue(t, e)
	put("eu", "gold", "1v1", 10*time.Second)
	_, body := e.post(t, `{"player_id":"alice","mode":"1v1","skill":1650,"region":"eu"}`, "")
	id := body["ticket_id"].(string)

	next, closeIt := sseEvents(t, e, id, "")
	if ev, v := next(); ev != "1" || v["status"] != "queued" || v["expected_wait_ms"] != 10000.0 {
		t.Fatalf("first event %s %v, want id 1 queued with 10000", ev, v)
	}
	put("eu", "gold", "1v1", 11*time.Second) // a tenth: not sent
	put("eu", "gold", "1v1", 20*time.Second)
	if ev, v := next(); ev != "1" || v["status"] != "queued" || v["expected_wait_ms"] != 20000.0 {
		t.Fatalf("after the wait doubled: %s %v, want id 1 queued with 20000", ev, v)
	}
	closeIt()

	next, _ = sseEvents(t, e, id, "1")
	put("eu", "gold", "1v1", 40*time.Second)
	if ev, v := next(); ev != "1" || v["expected_wait_ms"] != 40000.0 {
		t.Fatalf("first event after resuming at 1: %s %v, want the refresh to 40000, not queued again", ev, v)
	}
	e.allocate(t, id, "alice")
	if ev, v := next(); ev != "2" || v["status"] != "matched" || v["expected_wait_ms"] != nil {
		t.Fatalf("after the match: %s %v", ev, v)
	}

	put("asia", "platinum", "1v1", 4*time.Second)
	c, read := dialEvents(t, e, "player_id=rich&skill=2500&region=asia&mode=1v1")
	if first := read(); first["expected_wait_ms"] != 4000.0 {
		t.Fatalf("first message %v, want expected_wait_ms 4000", first)
	}
	put("asia", "platinum", "1v1", 4200*time.Millisecond) // a twentieth: not sent
	put("asia", "platinum", "1v1", 2*time.Second)
	if v := read(); v["status"] != "queued" || v["expected_wait_ms"] != 2000.0 {
		t.Fatalf("after the wait halved: %v, want queued with 2000", v)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"cancel"}`)); err != nil {
		t.Fatal(err)
	}
	if v := read(); v["status"] != "cancelled" {
		t.Fatalf("after cancel: %v", v)
	}
}

// sseEvents follows ticket id's events on e's frontend, resuming after
// lastID unless it is empty; next is the id and data of the next event,
// within 5 seconds.
func sseEvents(t *testing.T, e *env, id, lastID string) (next func() (string, map[string]any), closeIt func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.http.URL+"/v1/tickets/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.token(t, e.callerOf("/v1/tickets/"+id, "")))
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	closeIt = func() { cancel(); res.Body.Close() }
	t.Cleanup(closeIt)
	r := bufio.NewReader(res.Body)
	return func() (string, map[string]any) {
		t.Helper()
		timer := time.AfterFunc(5*time.Second, cancel)
		defer timer.Stop()
		var ev string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("no event within 5s: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			if v, ok := strings.CutPrefix(line, "id: "); ok {
				ev = v
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var v map[string]any
				if err := json.Unmarshal([]byte(data), &v); err != nil {
					t.Fatal(err)
				}
				return ev, v
			}
		}
	}, closeIt
}
