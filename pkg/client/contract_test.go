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
	assigned := `"status":"assigned","assignment":{"url":"ws://game/room"}`
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
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"ticket_id":"t2","status":"assigned","assignment":{"url":"ws://game/room"}}`))
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
