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
// past its best-of. Connections the room refused (a third player, a join
// token used a second time) and the one it replaced (alice resuming on a
// new connection halfway) keep sending the same messages, as their read
// loops do until their sockets close: they get nothing after their
// refusal, and the room never writes to a connection it closed.
func FuzzRoomMessages(f *testing.F) {
	f.Add([]byte(`{"type":"move","move":"rock"}`), []byte(`{"type":"move","move":"scissors"}`), true)
	f.Add([]byte(`{"type":"move","move":"lizard"}`), []byte(`{"type":"chat","move":"rock"}`), true)
	f.Add([]byte(`{"type":"move"}`), []byte(`not json`), false)
	f.Add([]byte(`{"type":"move","move":"PAPER","extra":[1,2]}`), []byte(`{}`), true)
	f.Add([]byte("\x00\xff"), []byte(`{"type":"move","move":"rock"`), true)
	known := map[string]bool{"welcome": true, "waiting": true, "start": true, "resume": true, "moved": true, "round": true,
		"player_left": true, "over": true, "error": true}
	f.Fuzz(func(t *testing.T, a, b []byte, text bool) {
		r := newRoom("m1", seating{}, Config{BestOf: 3}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		conn := func(player, resume string) *client {
			c := newClient(player, resume, nil)
			c.send = make(chan []byte, 256)
			return c
		}
		ca, cb := conn("alice", ""), conn("bob", "")
		r.handle(event{kind: evJoin, client: ca})
		r.handle(event{kind: evJoin, client: cb})
		third, reused := conn("carol", ""), conn("alice", "")
		r.handle(event{kind: evJoin, client: third})  // refused: the room is full
		r.handle(event{kind: evJoin, client: reused}) // refused: the token was used
		kind := websocket.TextMessage
		if !text {
			kind = websocket.BinaryMessage
		}
		ended := false
		var resumed *client
		for i := range 8 { // the same two messages, over and over
			if i == 4 { // alice comes back on a new connection; ca is replaced
				resumed = conn("alice", r.seats["alice"])
				if !ended {
					r.handle(event{kind: evJoin, client: resumed})
				}
			}
			senders := []struct {
				c    *client
				data []byte
			}{{ca, a}, {cb, b}, {third, a}, {reused, b}}
			if resumed != nil {
				senders = append(senders, struct {
					c    *client
					data []byte
				}{resumed, a})
			}
			for _, m := range senders {
				if !ended && r.handle(clientEvent(m.c, kind, m.data)) {
					ended = true
				}
			}
		}
		r.close() // as run does at the end: must not close a channel twice
		for _, c := range []*client{third, reused} {
			if n := len(c.send); n != 1 {
				t.Fatalf("refused %s got %d messages, want only the refusal", c.player, n)
			}
		}
		for _, c := range []*client{ca, cb, third, reused, resumed} {
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
