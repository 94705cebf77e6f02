package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/gorilla/websocket"
)

// FuzzRoomMessages plays whatever two players send through a room, the
// way the server does (decode, then the room's owner loop): nothing
// panics, every message the room sends is JSON of a known type, a bad
// message is answered with an error, and a game never ends with a score
// past its best-of.
func FuzzRoomMessages(f *testing.F) {
	f.Add([]byte(`{"type":"move","move":"rock"}`), []byte(`{"type":"move","move":"scissors"}`), true)
	f.Add([]byte(`{"type":"move","move":"lizard"}`), []byte(`{"type":"chat","move":"rock"}`), true)
	f.Add([]byte(`{"type":"move"}`), []byte(`not json`), false)
	f.Add([]byte(`{"type":"move","move":"PAPER","extra":[1,2]}`), []byte(`{}`), true)
	f.Add([]byte("\x00\xff"), []byte(`{"type":"move","move":"rock"`), true)
	known := map[string]bool{"welcome": true, "waiting": true, "start": true, "resume": true, "moved": true, "round": true,
		"opponent_left": true, "over": true, "error": true}
	f.Fuzz(func(t *testing.T, a, b []byte, text bool) {
		r := newRoom("m1", nil, Config{BestOf: 3}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		ca, cb := newClient("alice", "", nil), newClient("bob", "", nil)
		ca.send, cb.send = make(chan []byte, 256), make(chan []byte, 256)
		r.handle(event{kind: evJoin, client: ca})
		r.handle(event{kind: evJoin, client: cb})
		kind := websocket.TextMessage
		if !text {
			kind = websocket.BinaryMessage
		}
		ended := false
		for range 8 { // the same two messages, over and over
			for _, m := range []struct {
				c    *client
				data []byte
			}{{ca, a}, {cb, b}} {
				if !ended && r.handle(clientEvent(m.c, kind, m.data)) {
					ended = true
				}
			}
		}
		for _, c := range []*client{ca, cb} {
			for len(c.send) > 0 {
				var m message
				raw := <-c.send
				if err := json.Unmarshal(raw, &m); err != nil || !known[m.Type] {
					t.Fatalf("room sent %q", raw)
				}
				if m.Type == "error" && m.Error == "" {
					t.Fatal("an error without a text")
				}
				for _, points := range m.Score {
					if points > 2 {
						t.Fatalf("score %v in a best of 3", m.Score)
					}
				}
			}
		}
	})
}
