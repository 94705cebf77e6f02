package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/client"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// sse answers an event stream of the given events, then ends it.
func sse(events ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for _, e := range events {
			io.WriteString(w, e)
		}
	}
}

func event(id int, data string) string {
	return fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", id, ticketapi.EventStatus, data)
}

// An answer that breaks the contract ends the call with ErrMalformed
// (ticketapi's policy): another ticket's events or view, and "assigned"
// without the assignment, whatever the event's id and whether or not the
// caller looks at every event.
func TestAnswersOfAnotherTicketOrWithoutAssignmentAreMalformed(t *testing.T) {
	t.Parallel()
	assigned := `"status":"assigned","assignment":{"url":"http://game/play?room=r"}`
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"another ticket's queued", sse(event(1, `{"ticket_id":"OTHER","status":"queued"}`), event(3, `{"ticket_id":"MINE",`+assigned+`}`))},
		{"another ticket's outcome", sse(event(3, `{"ticket_id":"OTHER",`+assigned+`}`))},
		{"assigned without its assignment, id 3", sse(event(3, `{"ticket_id":"MINE","status":"assigned"}`))},
		{"assigned without its assignment, id 1", sse(event(1, `{"ticket_id":"MINE","status":"assigned"}`))},
		{"assigned without its assignment, id 2", sse(event(2, `{"ticket_id":"MINE","status":"assigned"}`))},
	} {
		for _, withFn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, callback %v", tc.name, withFn), func(t *testing.T) {
				t.Parallel()
				c := newClient(t, tc.h)
				var fn func(ticketapi.View)
				if withFn {
					fn = func(ticketapi.View) {}
				}
				v, err := c.Follow(t.Context(), "MINE", fn)
				if !errors.Is(err, client.ErrMalformed) {
					t.Fatalf("got %+v, %v; want ErrMalformed", v, err)
				}
			})
		}
	}
	for _, call := range []string{"get", "cancel"} {
		c := newClient(t, answer(200, "", `{"ticket_id":"OTHER","status":"queued"}`))
		var err error
		if call == "get" {
			_, err = c.Get(t.Context(), "MINE")
		} else {
			_, err = c.Cancel(t.Context(), "MINE")
		}
		if !errors.Is(err, client.ErrMalformed) {
			t.Errorf("%s answered with another ticket: %v, want ErrMalformed", call, err)
		}
	}
}

// A WebSocket whose messages change ticket midway breaks the contract.
func TestQueueRefusesAnotherTicketsMessage(t *testing.T) {
	t.Parallel()
	c := newClient(t, wsServer(func(conn *websocket.Conn, _ *http.Request) {
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"ticket_id":"t1","status":"queued"}`))
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"ticket_id":"t2","status":"assigned","assignment":{"url":"http://game/play?room=r"}}`))
		time.Sleep(100 * time.Millisecond) // let the client read both before the close
	}))
	if v, err := c.Queue(t.Context(), ticketapi.Request{Region: "eu"}, nil); !errors.Is(err, client.ErrMalformed) {
		t.Fatalf("got %+v, %v; want ErrMalformed", v, err)
	}
}

// The client never follows a redirect: the frontend never sends one, and
// following it would carry the bearer token to whatever the redirect
// names (net/http keeps it for another port of the same host). This holds
// with the caller's own HTTPClient too.
func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	var stolen atomic.Value
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Store(r.Header.Get("Authorization"))
		answer(202, "", `{"ticket_id":"t1","status":"queued"}`)(w, r)
	}))
	t.Cleanup(elsewhere.Close)
	redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	token := func(cfg *client.Config) {
		cfg.Token = func(_ context.Context, _ string) (string, error) { return "SECRET", nil }
	}
	for _, name := range []string{"own client", "caller's client"} {
		tune := []func(*client.Config){token}
		if name == "caller's client" {
			tune = append(tune, func(cfg *client.Config) { cfg.HTTPClient = &http.Client{} })
		}
		c := newClient(t, redirect, tune...)
		_, err := c.Create(t.Context(), ticketapi.Request{Region: "eu"})
		var e *client.Error
		if !errors.As(err, &e) || e.Status != http.StatusTemporaryRedirect {
			t.Errorf("%s: %v, want the 307 as an *Error", name, err)
		}
		if tok := stolen.Load(); tok != nil {
			t.Fatalf("%s: the redirect's target received Authorization %q", name, tok)
		}
	}
}

// TraceParent sends the W3C header the frontend's create span continues.
func TestCreateSendsTraceParent(t *testing.T) {
	t.Parallel()
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var got atomic.Value
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("traceparent"))
		answer(202, "", `{"ticket_id":"t1","status":"queued"}`)(w, r)
	}))
	if _, err := c.Create(t.Context(), ticketapi.Request{Region: "eu"}, client.TraceParent(tp)); err != nil || got.Load() != tp {
		t.Fatalf("sent traceparent %v, %v", got.Load(), err)
	}
}

// An assignment whose URL ticketapi.ValidAssignmentURL refuses (its
// test holds the cases of the rule) is refused as the TypeScript client
// refuses it (toTicket). The refusal matches ErrAssignmentURL and
// ErrMalformed (never retried), over Follow, Get and Queue alike; a few
// URLs of each kind show that the client applies the rule.
func TestAssignmentURLMustBeHTTP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://10.0.0.7:7654/play?room=r&token=x", true},
		{"HTTPS://game.example/play?room=r", true},
		{"javascript:alert(1)", false},
		{"/play?room=r", false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel()
			view := fmt.Sprintf(`{"ticket_id":"MINE","status":"assigned","assignment":{"url":%q}}`, tc.url)
			check := func(call string, v ticketapi.View, err error) {
				t.Helper()
				switch {
				case tc.ok && (err != nil || v.Assignment == nil || v.Assignment.URL != tc.url):
					t.Errorf("%s: %+v, %v; want the assignment", call, v, err)
				case !tc.ok && (!errors.Is(err, client.ErrAssignmentURL) || !errors.Is(err, client.ErrMalformed)):
					t.Errorf("%s: %+v, %v; want ErrAssignmentURL and ErrMalformed", call, v, err)
				}
			}
			for _, withFn := range []bool{false, true} {
				var fn func(ticketapi.View)
				if withFn {
					fn = func(ticketapi.View) {}
				}
				v, err := newClient(t, sse(event(3, view))).Follow(t.Context(), "MINE", fn)
				check(fmt.Sprintf("follow, callback %v", withFn), v, err)
			}
			v, err := newClient(t, answer(200, "", view)).Get(t.Context(), "MINE")
			check("get", v, err)
			v, err = newClient(t, wsServer(func(conn *websocket.Conn, _ *http.Request) {
				_ = conn.WriteMessage(websocket.TextMessage, []byte(view))
				_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "assigned"), time.Now().Add(time.Second))
			})).Queue(t.Context(), ticketapi.Request{Region: "eu"}, nil)
			check("queue", v, err)
		})
	}
}

// An assignment on a view that is not "assigned" (a broken or hostile
// server's: the frontend sends one only with "assigned") is dropped, its
// URL unchecked, as the TypeScript client does not refuse such a view
// either: a game client that reads Assignment without looking at the
// status never finds one it should not open. Over Follow (every event
// and the outcome), Get and Queue alike.
func TestAssignmentOfANotAssignedViewIsDropped(t *testing.T) {
	t.Parallel()
	bad := `"assignment":{"url":"javascript:alert(1)"}`
	view := func(status string) string { return `{"ticket_id":"MINE","status":"` + status + `",` + bad + `}` }
	var seen []ticketapi.View
	check := func(call string, v ticketapi.View, err error) {
		t.Helper()
		if err != nil || v.Status != "failed" || v.Assignment != nil {
			t.Errorf("%s: %+v, %v; want failed without an assignment", call, v, err)
		}
		for _, s := range seen {
			if s.Assignment != nil {
				t.Errorf("%s: the callback saw %+v, want no assignment", call, s)
			}
		}
		seen = nil
	}
	collect := func(v ticketapi.View) { seen = append(seen, v) }
	v, err := newClient(t, sse(event(1, view("queued")), event(2, view("matched")), event(3, view("failed")))).Follow(t.Context(), "MINE", collect)
	check("follow", v, err)
	for _, status := range []string{"queued", "matched"} {
		v, err = newClient(t, answer(200, "", view(status))).Get(t.Context(), "MINE")
		if err != nil || v.Assignment != nil {
			t.Errorf("get %s: %+v, %v; want no assignment", status, v, err)
		}
	}
	v, err = newClient(t, answer(200, "", view("failed"))).Get(t.Context(), "MINE")
	check("get", v, err)
	v, err = newClient(t, wsServer(func(conn *websocket.Conn, _ *http.Request) {
		_ = conn.WriteMessage(websocket.TextMessage, []byte(view("queued")))
		_ = conn.WriteMessage(websocket.TextMessage, []byte(view("failed")))
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "failed"), time.Now().Add(time.Second))
	})).Queue(t.Context(), ticketapi.Request{Region: "eu"}, collect)
	check("queue", v, err)
}
