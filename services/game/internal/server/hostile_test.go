package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Hostile and unlucky clients: a connection the room has refused or
// replaced keeps its read loop until its socket closes, and whatever it
// sends then must be ignored. Before the fix each of these crashed the
// whole process with "send on closed channel" in room.push.

// playToTheEnd checks that the room still plays: a best of 1, a wins.
func playToTheEnd(t *testing.T, a, b *websocket.Conn) {
	t.Helper()
	move(t, a, "rock")
	move(t, b, "scissors")
	if m := next(t, b, "over"); m.Winner == "" {
		t.Fatalf("over %+v", m)
	}
}

// sendMoves writes moves and bad messages on c as fast as it can, as a
// refused client that ignores the close would; errors are expected once
// the server closes the socket.
func sendMoves(c *websocket.Conn) {
	for _, msg := range []string{`{"type":"move","move":"rock"}`, `not json`, `{"type":"move","move":"paper"}`, `{"type":"chat"}`} {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		if c.WriteMessage(websocket.TextMessage, []byte(msg)) != nil {
			return
		}
	}
}

func TestRefusedThirdPlayerSendsMoves(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{BestOf: 1})
	a, b := startGame(t, hs, "m1", "alice", "bob")
	c := join(t, hs, "m1", "carol")
	if m := next(t, c, "error"); !strings.Contains(m.Error, "full") {
		t.Fatalf("third player: %+v", m)
	}
	sendMoves(c)
	time.Sleep(100 * time.Millisecond) // let the room see them
	playToTheEnd(t, a, b)
}

func TestReusedTokenSendsMoves(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{BestOf: 1})
	tok := token(t, "m1", "alice", time.Minute)
	a, _, err := dial(t, hs, "m1", tok)
	if err != nil {
		t.Fatal(err)
	}
	b := join(t, hs, "m1", "bob")
	next(t, a, "start")
	next(t, b, "start")
	// The same token again (copied from a URL, or a second tab without
	// the resume key): refused, and its moves must not reach the game.
	thief, _, err := dial(t, hs, "m1", tok)
	if err != nil {
		t.Fatal(err)
	}
	if m := next(t, thief, "error"); !strings.Contains(m.Error, "used already") {
		t.Fatalf("reused token: %+v", m)
	}
	sendMoves(thief)
	time.Sleep(100 * time.Millisecond)
	playToTheEnd(t, a, b)
}

func TestReplacedConnectionSendsMoves(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{BestOf: 1})
	old := join(t, hs, "m1", "alice")
	key := next(t, old, "welcome").Resume
	b := join(t, hs, "m1", "bob")
	next(t, old, "start")
	next(t, b, "start")
	// Alice resumes on a new connection while the old one is still open
	// (a flaky network, a second tab): the new one wins.
	a, _, err := dialResume(t, hs, "m1", token(t, "m1", "alice", time.Minute), key)
	if err != nil {
		t.Fatal(err)
	}
	next(t, a, "resume")
	// The old socket's move must not count for alice, nor crash anything.
	move(t, old, "paper")
	sendMoves(old)
	time.Sleep(100 * time.Millisecond)
	move(t, b, "scissors")
	if m := next(t, b, "moved"); m.Type != "moved" {
		t.Fatalf("bob's move: %+v", m)
	}
	move(t, a, "rock")
	if m := next(t, a, "over"); m.Winner != "alice" {
		t.Fatalf("over %+v: the old connection's paper counted", m)
	}
}

// TestPanicInOneRoomEndsOnlyThatRoom injects a panic into one room's
// handling of a move: that room ends, its players are told why, the
// panic is counted, and a game in another room on the same server plays
// on to its end.
func TestPanicInOneRoomEndsOnlyThatRoom(t *testing.T) {
	t.Parallel()
	s, hs := startServer(t, Config{BestOf: 1})
	s.onEvent = func(matchID string, ev event) {
		if matchID == "boom" && ev.kind == evMove {
			panic("injected")
		}
	}
	a, b := startGame(t, hs, "ok", "alice", "bob")
	x, y := startGame(t, hs, "boom", "xavier", "yvonne")
	move(t, x, "rock")
	if m := next(t, y, "over"); !strings.Contains(m.Reason, "internal error") {
		t.Fatalf("the failed room's players were told %+v", m)
	}
	playToTheEnd(t, a, b)
	waitFor(t, func() bool { return s.Rooms() == 0 }, "rooms still open")
	body := scrapeMetrics(t, hs)
	for _, want := range []string{"quickmatch_game_room_panics_total 1", `quickmatch_game_rooms_ended_total{outcome="panic"} 1`, `quickmatch_game_rooms_ended_total{outcome="won"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func scrapeMetrics(t *testing.T, hs *httptest.Server) string {
	t.Helper()
	res, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
