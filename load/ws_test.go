package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/loadrecord"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// TestFollowWSKinds: what `load run -via ws` counts for each way a
// ticket on a WebSocket goes. Its first message is its acceptance (timed
// and recorded, as a 202); a refusal before the upgrade or after it is a
// refused POST, timed as one; a socket cut once the ticket is queued is
// followed on the ticket's event stream, as the client does, and the
// ticket counted by its outcome.
func TestFollowWSKinds(t *testing.T) {
	t.Parallel()
	view := func(status string) string {
		v := `{"ticket_id":"t1","status":"` + status + `","region":"eu","tier":"gold","mode":"1v1"`
		if status == "assigned" {
			v += `,"assignment":{"url":"http://game/play?room=r"}`
		}
		return v + "}"
	}
	const silent = -1 // close: none, the socket stays open and says nothing
	for _, tc := range []struct {
		name     string
		refuse   int      // an HTTP status before the upgrade, 0: none
		send     []string // statuses sent on the socket
		close    int      // a close code after them, 0: the socket is cut
		want     string
		accepted bool // timed as accepted (else as refused, when want is post_503)
	}{
		{"assigned", 0, []string{"queued", "matched", "assigned"}, websocket.CloseNormalClosure, "", true},
		{"expired", 0, []string{"queued", "expired"}, websocket.CloseNormalClosure, "expired", true},
		{"cancelled", 0, []string{"queued", "cancelled"}, websocket.CloseNormalClosure, "cancelled", true},
		{"refused before the upgrade", http.StatusServiceUnavailable, nil, 0, refusedKind, false},
		{"refused after the upgrade", 0, nil, websocket.CloseTryAgainLater, refusedKind, false},
		// Once queued, a 1013 (the frontend lost track of the ticket) is
		// followed on the ticket's event stream, as a cut is.
		{"closed 1013 once queued, then followed", 0, []string{"queued"}, websocket.CloseTryAgainLater, "", true},
		{"cut once queued, then followed", 0, []string{"queued"}, 0, "", true},
		{"silent once queued", 0, []string{"queued"}, silent, "timeout", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mux := http.NewServeMux()
			mux.HandleFunc("GET "+ticketapi.PathWSEvents, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("region") != "eu" || r.Header.Get(ticketapi.HeaderAuthorization) != "Bearer tok" {
					http.Error(w, "want region eu and the player's token", http.StatusBadRequest)
					return
				}
				if tc.refuse != 0 {
					http.Error(w, `{"error":"busy"}`, tc.refuse)
					return
				}
				c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
				if err != nil {
					return
				}
				defer c.Close()
				for _, st := range tc.send {
					_ = c.WriteMessage(websocket.TextMessage, []byte(view(st)))
				}
				switch tc.close {
				case silent: // until the client gives up and closes
					for {
						if _, _, err := c.ReadMessage(); err != nil {
							break
						}
					}
				case 0:
				default:
					_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(tc.close, ticketapi.RetryAfterCloseReason(time.Second, "busy")))
				}
			})
			mux.HandleFunc("GET /v1/tickets/{id}/events", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "id: 3\nevent: status\ndata: "+view("assigned")+"\n\n")
			})
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			fe, err := newFrontend(srv.URL, client(false, 1, 8), wsDialer(1), false)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			rec := &recorder{enc: json.NewEncoder(&out)}
			wait := 10 * time.Second
			if tc.close == silent {
				wait = time.Second // the ticket's -timeout
			}
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			start := time.Now()
			answered, kind := followWS(ctx, fe, &tokens{fixed: "tok"}, 0, "p1", "eu", 1650, rec)
			if kind != tc.want {
				t.Fatalf("kind %q, want %q", kind, tc.want)
			}
			if answered.Before(start) {
				t.Fatalf("answered %v: not timed", answered)
			}
			var a loadrecord.Acked
			if recorded := json.Unmarshal(out.Bytes(), &a) == nil && a.TicketID == "t1" && a.AcceptedAt.Equal(answered); recorded != tc.accepted {
				t.Fatalf("recorded %q as accepted: %v, want %v", out.String(), recorded, tc.accepted)
			}
		})
	}
}
