package api_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// TestShutdownHandsOverEventsWebSockets: a frontend that shuts down (a
// rolling deploy) keeps the tickets of its /ws/events clients and closes
// them with 1012, naming the ticket's event stream, which any other
// frontend serves: both clients follow a ticket there once its socket is
// lost. Before, it cancelled them, so a rolling deploy resolved every
// WebSocket player's wait as cancelled.
func TestShutdownHandsOverEventsWebSockets(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	c, read := dialEvents(t, e, "player_id=rolling&skill=1650&region=eu")
	first := read()
	id, _ := first["ticket_id"].(string)
	if first["status"] != "queued" || id == "" {
		t.Fatalf("first %v", first)
	}
	e.shutdown()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ce *websocket.CloseError
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue // a view sent before the shutdown
		}
		if !errors.As(err, &ce) || ce.Code != websocket.CloseServiceRestart || !strings.Contains(ce.Text, ticketapi.EventsPath(id)) {
			t.Fatalf("on shutdown: %v, want close 1012 naming %s", err, ticketapi.EventsPath(id))
		}
		break
	}
	// Still queued: a cancel would have been written before the close.
	if owner, _ := e.claims.Owner(t.Context(), id); owner == events.OwnerCancelled {
		t.Fatal("the ticket was cancelled")
	}
	e.http = newFrontend(t, e, options{})
	if code, v := e.get(t, ticketapi.TicketPath(id)); code != 200 || v["status"] != "queued" {
		t.Fatalf("on another frontend: %d %v", code, v)
	}
}

// TestShutdownCancelsDemoWebSockets: the demo's /ws client hears one URL
// and nothing of its ticket before, so it cannot follow it elsewhere: its
// ticket is cancelled on shutdown, as when it leaves.
func TestShutdownCancelsDemoWebSockets(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	c, tk := demoTicket(t, e, "demo")
	e.shutdown()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("on shutdown: %v, want close 1001", err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		owner, _ := e.claims.Owner(t.Context(), tk.TicketID)
		return owner == events.OwnerCancelled
	}, "the demo's ticket was not cancelled")
}

// TestEventsWebSocketSaysItLives: a /ws/events client that has been sent
// nothing for a heartbeat gets its ticket's latest view again. A
// browser's page cannot see pings, so a connection a network cut dead
// was, for the page, one whose ticket still waited, for good.
func TestEventsWebSocketSaysItLives(t *testing.T) {
	t.Parallel()
	e := start(t, options{}) // heartbeat 100 ms
	c, read := dialEvents(t, e, "player_id=quiet&skill=1650&region=eu")
	first := read()
	for range 3 { // raw reads: read skips a repeat
		var v map[string]any
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := c.ReadJSON(&v); err != nil || !reflect.DeepEqual(v, first) {
			t.Fatalf("then %v %v, want the queued view again", v, err)
		}
	}
}

// TestGoClientQueuesThroughARollingDeploy: the Go client's Queue, behind
// a load balancer, across its frontend's shutdown: closed with 1012, it
// follows its ticket on another frontend to the assignment.
func TestGoClientQueuesThroughARollingDeploy(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	first, stopFirst := e.http, e.shutdown
	second := newFrontend(t, e, options{})
	var backend atomic.Pointer[url.URL]
	u, _ := url.Parse(first.URL)
	backend.Store(u)
	lb := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(backend.Load()) }})
	t.Cleanup(lb.Close)

	c := goClient(t, lb.URL, func(context.Context, string) (string, error) { return e.token(t, "roller"), nil })
	queued := make(chan string, 1)
	type outcome struct {
		v   ticketapi.View
		err error
	}
	out := make(chan outcome, 1)
	go func() {
		v, err := c.Queue(t.Context(), request("roller", "eu"), func(v ticketapi.View) {
			if v.Status == events.StatusQueued {
				select {
				case queued <- v.TicketID:
				default:
				}
			}
		})
		out <- outcome{v, err}
	}()
	var id string
	select {
	case id = <-queued:
	case <-time.After(10 * time.Second):
		t.Fatal("not queued")
	}
	u, _ = url.Parse(second.URL)
	backend.Store(u) // the balancer sends new connections to the second
	stopFirst()
	time.Sleep(200 * time.Millisecond) // the client follows on the second
	as := e.allocate(t, id, "roller")
	select {
	case o := <-out:
		if o.err != nil || o.v.Status != events.StatusAssigned || o.v.Assignment == nil || o.v.Assignment.URL != as.URL {
			t.Fatalf("queue: %+v %v, want the assignment", o.v, o.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no outcome")
	}
}

// TestEventsWebSocketLostIsNotLeft: a /ws/events client whose connection
// is cut (no close frame: a phone that changed networks, a proxy that
// died) keeps its ticket, which both clients then follow on its event
// stream; one that closes (a page unloaded, a client that left) has it
// cancelled, unless it closes with ticketapi.CloseFollowing (the
// TypeScript client's, for a socket silent too long). Before, a cut
// cancelled the ticket once the frontend noticed, and the client,
// following, heard "cancelled" for a wait a network blip ended.
func TestEventsWebSocketLostIsNotLeft(t *testing.T) {
	t.Parallel()
	e := start(t, options{}) // heartbeat 100 ms: a write to the cut socket fails soon
	for _, tc := range []struct {
		name      string
		end       func(*websocket.Conn)
		cancelled bool
	}{
		{"cut", func(c *websocket.Conn) { _ = c.NetConn().Close() }, false},
		{"closed", func(c *websocket.Conn) {
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
		}, true},
		{"sent more than it may", func(c *websocket.Conn) {
			_ = c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 600)))
			_ = c.NetConn().Close()
		}, true},
		{"closed to follow elsewhere", func(c *websocket.Conn) {
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(ticketapi.CloseFollowing, "silent"), time.Now().Add(time.Second))
		}, false},
	} {
		player := strings.ReplaceAll(tc.name, " ", "-")
		c, read := dialEvents(t, e, "player_id="+player+"&skill=1650&region=eu")
		id, _ := read()["ticket_id"].(string)
		tc.end(c)
		if tc.cancelled {
			testkit.Eventually(t, 5*time.Second, func() bool {
				owner, _ := e.claims.Owner(t.Context(), id)
				return owner == events.OwnerCancelled
			}, "%s: the ticket was not cancelled", tc.name)
			continue
		}
		time.Sleep(500 * time.Millisecond) // five heartbeats: the frontend has written to the socket
		if owner, _ := e.claims.Owner(t.Context(), id); owner == events.OwnerCancelled {
			t.Errorf("%s: the ticket was cancelled", tc.name)
		}
		if code, v := e.get(t, ticketapi.TicketPath(id)); code != 200 || v["status"] != "queued" {
			t.Errorf("%s: %d %v, want queued", tc.name, code, v)
		}
	}
}

// TestShutdownTellsADemoClientItsMatch: a demo client's ticket that a
// match took as the shutdown came cannot be cancelled; its close no
// longer says it was (it said "ticket cancelled" of a ticket in a match).
func TestShutdownTellsADemoClientItsMatch(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	c, tk := demoTicket(t, e, "matched")
	if won, _, err := e.claims.Claim(t.Context(), tk.TicketID, events.MatchOwner("m1")); !won || err != nil {
		t.Fatalf("claim: %v %v", won, err)
	}
	e.shutdown()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway || strings.Contains(ce.Text, "cancelled") {
		t.Fatalf("on shutdown: %v, want 1001 not saying cancelled", err)
	}
}

// demoTicket queues player's ticket over the demo's /ws (us, bronze) on
// e's frontend: its socket (closed at the test's end) and its ticket.
func demoTicket(t *testing.T, e *env, player string) (*websocket.Conn, events.Ticket) {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(wsURL(t, e, "/ws?player_id="+player+"&skill=100&region=us"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	testkit.Eventually(t, 5*time.Second, func() bool { return e.queued(t) == 1 }, "no ticket")
	st, _ := e.js.Stream(t.Context(), e.subj.TicketsStream())
	raw, _ := st.GetLastMsgForSubject(t.Context(), "matchmaking.us.bronze")
	tk, _ := events.DecodeTicket(raw.Data)
	return c, tk
}
