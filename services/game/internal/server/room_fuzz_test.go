package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
)

// fuzzRooms are the rooms FuzzRoomMessages plays: two players seated in
// order of arrival (tokens without a seat), a 2v2 and a free-for-all of
// three seated by their tokens' seats (the local stack), and the same
// two seated by an allocation (Agones). players are in the order they
// join, team their token's team (-1: none).
var fuzzRooms = []struct {
	seating seating
	players []string
	team    []int
	ffa     bool
}{
	{seating{}, []string{"alice", "bob"}, []int{-1, -1}, false},
	{tokenSeating(jointoken.Seat{Teams: 2, TeamSize: 2}), []string{"alice", "bob", "carol", "dave"}, []int{0, 0, 1, 1}, false},
	{tokenSeating(jointoken.Seat{Teams: 3, TeamSize: 1}), []string{"alice", "bob", "carol"}, []int{0, 1, 2}, true},
	{allocatedSeating(agones.Room{Mode: "2v2", Teams: [][]string{{"alice", "bob"}, {"carol", "dave"}}}),
		[]string{"carol", "alice", "dave", "bob"}, []int{1, 0, 1, 0}, false},
	{allocatedSeating(agones.Room{Mode: "ffa", Teams: [][]string{{"alice"}, {"bob"}, {"carol"}}}),
		[]string{"bob", "alice", "carol"}, []int{1, 0, 2}, true},
}

// FuzzRoomMessages plays whatever the players of a room send through it,
// the way the server does (decode, then the room's owner loop), in each
// room of fuzzRooms: nothing panics, every message the room sends is
// JSON of a known type, a bad message is answered with an error, a
// score never passes what best-of 3 allows (two rounds taken in a team
// mode; in a free-for-all a point per opponent in each of 3 rounds), and
// the winners are seated players. Connections the room refused (one
// player too many, a join token used a second time) and the one it
// replaced (alice resuming on a new connection halfway) keep sending the
// same messages, as their read loops do until their sockets close: they
// get nothing after their refusal, and the room never writes to a
// connection it closed.
func FuzzRoomMessages(f *testing.F) {
	f.Add([]byte(`{"type":"move","move":"rock"}`), []byte(`{"type":"move","move":"scissors"}`), true, uint8(0))
	f.Add([]byte(`{"type":"move","move":"lizard"}`), []byte(`{"type":"chat","move":"rock"}`), true, uint8(0))
	f.Add([]byte(`{"type":"move"}`), []byte(`not json`), false, uint8(1))
	f.Add([]byte(`{"type":"move","move":"PAPER","extra":[1,2]}`), []byte(`{}`), true, uint8(2))
	f.Add([]byte("\x00\xff"), []byte(`{"type":"move","move":"rock"`), true, uint8(3))
	for shape := range uint8(len(fuzzRooms)) {
		f.Add([]byte(`{"type":"move","move":"rock"}`), []byte(`{"type":"move","move":"scissors"}`), true, shape)
		f.Add([]byte(`{"type":"move","move":"paper"}`), []byte(`{"type":"move","move":"paper"}`), true, shape)
	}
	known := map[string]bool{"welcome": true, "waiting": true, "start": true, "resume": true, "moved": true, "round": true,
		"player_left": true, "player_back": true, "over": true, "error": true}
	f.Fuzz(func(t *testing.T, a, b []byte, text bool, shape uint8) {
		fr := fuzzRooms[int(shape)%len(fuzzRooms)]
		r := newRoom("m1", fr.seating, Config{BestOf: 3}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		conn := func(player, resume string, team int) *client {
			c := newClient(player, resume, nil)
			c.send, c.team = make(chan []byte, 256), team
			return c
		}
		type sender struct {
			c    *client
			data []byte
		}
		var senders []sender
		for i, p := range fr.players {
			c := conn(p, "", fr.team[i])
			r.handle(event{kind: evJoin, client: c})
			senders = append(senders, sender{c, [][]byte{a, b}[i%2]})
		}
		extra, reused := conn("mallory", "", fr.team[0]), conn(fr.players[0], "", fr.team[0])
		r.handle(event{kind: evJoin, client: extra})  // refused: the room is full
		r.handle(event{kind: evJoin, client: reused}) // refused: the token was used
		senders = append(senders, sender{extra, a}, sender{reused, b})
		kind := websocket.TextMessage
		if !text {
			kind = websocket.BinaryMessage
		}
		ended := false
		for i := range 8 { // the same messages, over and over
			if i == 4 && !ended { // the first player comes back on a new connection
				resumed := conn(fr.players[0], senders[0].c.resume, fr.team[0]) // the key its welcome gave
				r.handle(event{kind: evJoin, client: resumed})
				senders = append(senders, sender{resumed, a})
			}
			for _, m := range senders {
				if !ended && r.handle(clientEvent(m.c, kind, m.data)) {
					ended = true
				}
			}
		}
		r.close() // as run does at the end: must not close a channel twice
		for _, c := range []*client{extra, reused} {
			if n := len(c.send); n != 1 {
				t.Fatalf("refused %s got %d messages, want only the refusal", c.player, n)
			}
		}
		most := 2 // rounds a team takes in a best of 3
		if fr.ffa {
			most = 3 * (len(fr.players) - 1) // a point per opponent beaten, in each of 3 rounds
		}
		for _, s := range senders {
			checkSent(t, s.c, known, most, fr.players)
		}
	})
}

// checkSent checks what the room sent c (see FuzzRoomMessages).
func checkSent(t *testing.T, c *client, known map[string]bool, most int, players []string) {
	t.Helper()
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
			if points > most {
				t.Fatalf("score %v, at most %d in a best of 3", m.Score, most)
			}
		}
		for _, w := range m.Winners {
			if !slices.Contains(players, w) {
				t.Fatalf("winner %q is not a player: %q", w, raw)
			}
		}
	}
}
