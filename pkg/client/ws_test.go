package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/client"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// wsServer upgrades /ws/events and hands the connection to serve.
func wsServer(serve func(*websocket.Conn, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws/events" {
			http.NotFound(w, r)
			return
		}
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		serve(conn, r)
	}
}

// statusMessage is a message of ticket t1 (assigned to a room, if
// assigned).
func statusMessage(status string) []byte {
	if status == "assigned" {
		return []byte(`{"ticket_id":"t1","status":"assigned","assignment":{"url":"http://game/play?room=r"}}`)
	}
	return fmt.Appendf(nil, `{"ticket_id":"t1","status":%q}`, status)
}

// Queue sends the request as the query and the token as the header, and
// follows every status to the terminal one, each once.
func TestQueueFollowsToTheOutcome(t *testing.T) {
	t.Parallel()
	var query, auth string
	c := newClient(t, wsServer(func(conn *websocket.Conn, r *http.Request) {
		query, auth = r.URL.RawQuery, r.Header.Get("Authorization")
		// Each status but the last twice, as the frontend's heartbeat
		// sends it again: fn hears it once.
		for _, st := range []string{"queued", "queued", "matched", "matched", "assigned"} {
			_ = conn.WriteMessage(websocket.TextMessage, statusMessage(st))
		}
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "assigned"), time.Now().Add(time.Second))
	}), func(cfg *client.Config) {
		cfg.Token = func(context.Context, string) (string, error) { return "tok", nil }
	})
	skill := 1650
	var seen []events.Status
	v, err := c.Queue(t.Context(), ticketapi.Request{Region: "eu", Mode: "1v1", Skill: &skill}, func(v ticketapi.View) { seen = append(seen, v.Status) })
	if err != nil || v.Status != events.StatusAssigned || fmt.Sprint(seen) != "[queued matched assigned]" {
		t.Fatalf("queue: %+v %v, saw %v", v, err, seen)
	}
	if query != "mode=1v1&region=eu&skill=1650" || auth != "Bearer tok" {
		t.Fatalf("sent query %q, Authorization %q", query, auth)
	}
}

// Refusals over the WebSocket are typed as over HTTP: before the upgrade
// from the answer, after it from the close.
func TestQueueRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		h     http.HandlerFunc
		want  error
		check func(*client.Error) bool
	}{
		{"overloaded before the upgrade", answer(503, "2", errorBody(ticketapi.ErrorBody{Error: ticketapi.OverloadedError})), client.ErrOverloaded,
			func(e *client.Error) bool { return e.RetryAfter == 2*time.Second }},
		{"drained after the upgrade", wsServer(func(conn *websocket.Conn, _ *http.Request) {
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseTryAgainLater, ticketapi.RetryAfterCloseReason(30*time.Second, ticketapi.DrainedReason("eu.gold", "upgrade"))), time.Now().Add(time.Second))
		}), client.ErrDrained, func(e *client.Error) bool {
			return e.RetryAfter == 30*time.Second && e.Body.Drained != nil && e.Body.Drained.Shard == "eu.gold" && e.Body.Drained.Reason == "upgrade"
		}},
		{"full after the upgrade, suggesting another", wsServer(func(conn *websocket.Conn, _ *http.Request) {
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseTryAgainLater, ticketapi.RetryAfterCloseReason(5*time.Second, ticketapi.RegionFullError("eu", "us"))), time.Now().Add(time.Second))
		}), client.ErrRegionFull, func(e *client.Error) bool { return e.RetryAfter == 5*time.Second && e.Body.SuggestRegion == "us" }},
		{"invalid after the upgrade", wsServer(func(conn *websocket.Conn, _ *http.Request) {
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(ticketapi.CloseInvalid, "attributes.strings.platform: not allowed"), time.Now().Add(time.Second))
		}), client.ErrInvalid, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, tc.h)
			_, err := c.Queue(t.Context(), ticketapi.Request{Region: "eu"}, nil)
			var e *client.Error
			if !errors.Is(err, tc.want) || !errors.As(err, &e) || tc.check != nil && !tc.check(e) {
				t.Fatalf("got %v (%+v), want %v", err, e, tc.want)
			}
		})
	}
}

// What a hostile server sends over the WebSocket is bounded too, and the
// caller's context ends a Queue on a server that sends nothing.
func TestQueueHostileServer(t *testing.T) {
	t.Parallel()
	big := newClient(t, wsServer(func(conn *websocket.Conn, _ *http.Request) {
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"status":"queued","reason":"`+strings.Repeat("x", 8192)+`"}`))
	}), func(cfg *client.Config) { cfg.MaxEventBytes = 1024 })
	if _, err := big.Queue(t.Context(), ticketapi.Request{Region: "eu"}, nil); !errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("a message over the bound: %v", err)
	}
	dropped := newClient(t, wsServer(func(conn *websocket.Conn, _ *http.Request) {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
	}))
	if _, err := dropped.Queue(t.Context(), ticketapi.Request{Region: "eu"}, nil); !errors.Is(err, client.ErrConnectionLost) {
		t.Fatalf("a connection dropped before queuing: %v", err)
	}
	// Ended by its context, the client closes with a close frame: the
	// frontend keeps the ticket of a socket cut without one.
	// The context ends once the client reads the socket (it answered a
	// ping, as it does the frontend's heartbeat): ended during the dial
	// (a fixed 50 ms did, on a loaded machine), the client has no socket
	// to close and the server may never hear of it.
	heard := make(chan error, 1)
	reading := make(chan struct{}, 1)
	silent := newClient(t, wsServer(func(conn *websocket.Conn, _ *http.Request) {
		conn.SetPongHandler(func(string) error {
			select {
			case reading <- struct{}{}:
			default:
			}
			return nil
		})
		_ = conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second))
		_, _, err := conn.ReadMessage()
		heard <- err
	}))
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		select {
		case <-reading:
			cancel()
		case <-ctx.Done():
		}
	}()
	if _, err := silent.Queue(ctx, ticketapi.Request{Region: "eu"}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("a silent server: %v", err)
	}
	if err := <-heard; !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("the server heard %v, want a close frame (1000)", err)
	}
	if _, err := silent.Queue(t.Context(), ticketapi.Request{Region: "eu", Party: []string{"a", "b"}}, nil); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("a party over the WebSocket: %v", err)
	}
}

// A WebSocket cut once its ticket is queued is not opened again (that
// would queue a second ticket): the ticket's event stream, from after
// the statuses seen, says how it ended.
func TestQueueLostAfterQueuingFollowsTheTicket(t *testing.T) {
	t.Parallel()
	var dials, streams int
	var lastID string
	ws := wsServer(func(conn *websocket.Conn, _ *http.Request) {
		dials++
		_ = conn.WriteMessage(websocket.TextMessage, statusMessage("queued"))
	})
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/tickets/t1/events" {
			ws(w, r)
			return
		}
		streams++
		lastID = r.Header.Get("Last-Event-ID")
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: 3\nevent: status\ndata: {\"ticket_id\":\"t1\",\"status\":\"cancelled\"}\n\n")
	}))
	var seen []events.Status
	v, err := c.Queue(t.Context(), ticketapi.Request{Region: "eu"}, func(v ticketapi.View) { seen = append(seen, v.Status) })
	if err != nil || v.Status != events.StatusCancelled || fmt.Sprint(seen) != "[queued cancelled]" {
		t.Fatalf("queue: %+v %v, saw %v", v, err, seen)
	}
	if dials != 1 || streams != 1 || lastID != "1" {
		t.Fatalf("%d WebSockets, %d event streams from Last-Event-ID %q", dials, streams, lastID)
	}
}

// Once queued, a close that is not an outcome (1013: the frontend lost
// track of the ticket; 1012: it shuts down) is followed on the ticket's
// event stream, not returned as a refusal; and a caller that ends its
// context then has the ticket cancelled (a DELETE): no frontend hears the
// socket's close frame any more.
func TestQueueFollowsAfterAnyCloseAndCancelsOnLeaving(t *testing.T) {
	t.Parallel()
	for _, code := range []int{websocket.CloseTryAgainLater, websocket.CloseServiceRestart} {
		deleted := make(chan string, 1)
		opened := make(chan struct{}, 1)
		ws := wsServer(func(conn *websocket.Conn, _ *http.Request) {
			_ = conn.WriteMessage(websocket.TextMessage, statusMessage("queued"))
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, "lost track of the ticket"), time.Now().Add(time.Second))
		})
		c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodDelete:
				deleted <- r.URL.Path
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"ticket_id":"t1","status":"cancelled"}`)
			case r.URL.Path == "/v1/tickets/t1/events":
				w.Header().Set("Content-Type", "text/event-stream")
				w.(http.Flusher).Flush()
				opened <- struct{}{}
				<-r.Context().Done()
			default:
				ws(w, r)
			}
		}))
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			<-opened
			cancel()
		}()
		if _, err := c.Queue(ctx, ticketapi.Request{Region: "eu"}, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("close %d: %v, want the follow ended by the caller", code, err)
		}
		select {
		case path := <-deleted:
			if path != "/v1/tickets/t1" {
				t.Fatalf("close %d: DELETE %s", code, path)
			}
		default:
			t.Fatalf("close %d: the ticket was not cancelled", code)
		}
	}
}

// A message that breaks the contract (malformed, or another ticket's)
// ends Queue with a close frame, so the frontend cancels the ticket: a
// connection cut without one keeps it, and no one could name it.
func TestQueueRefusesABadMessageWithAClose(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"{", `{"ticket_id":"t2","status":"queued"}`} {
		heard := make(chan error, 1)
		c := newClient(t, wsServer(func(conn *websocket.Conn, _ *http.Request) {
			_ = conn.WriteMessage(websocket.TextMessage, statusMessage("queued"))
			_ = conn.WriteMessage(websocket.TextMessage, []byte(bad))
			_, _, err := conn.ReadMessage()
			heard <- err
		}))
		if _, err := c.Queue(t.Context(), ticketapi.Request{Region: "eu"}, nil); err == nil {
			t.Fatalf("%s: no error", bad)
		}
		if err := <-heard; !websocket.IsCloseError(err, websocket.CloseProtocolError) {
			t.Fatalf("%s: the server heard %v, want a close frame (1002)", bad, err)
		}
	}
}
