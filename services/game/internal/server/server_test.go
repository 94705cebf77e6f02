package server

import (
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// The allocator's signing key in these tests, and the game server's keys.
var (
	signer, _ = jointoken.NewSigner(ed25519.NewKeyFromSeed([]byte("game-test-key-0123456789abcdefgh")))
	keys      = jointoken.NewKeys(ed25519.NewKeyFromSeed([]byte("game-test-key-0123456789abcdefgh")).Public().(ed25519.PublicKey))
)

func startServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	cfg.JoinKeys = keys
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, hs
}

// startSkewed is startServer with the server's clock ahead of the
// test's by what skew holds (0 at first).
func startSkewed(t *testing.T, cfg Config) (*Server, *atomic.Int64, *httptest.Server) {
	t.Helper()
	cfg.JoinKeys = keys
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	skew := &atomic.Int64{}
	s.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, skew, hs
}

func token(t *testing.T, matchID, player string, ttl time.Duration) string {
	t.Helper()
	tok, err := signer.Sign(jointoken.Grant{MatchID: matchID, PlayerID: player, Expires: time.Now().Add(ttl)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func dial(t *testing.T, hs *httptest.Server, matchID, tok string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws?room=" + url.QueryEscape(matchID) + "&token=" + url.QueryEscape(tok)
	c, res, err := websocket.DefaultDialer.Dial(u, nil)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, res, err
}

func dialResume(t *testing.T, hs *httptest.Server, matchID, tok, resume string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws?room=" + url.QueryEscape(matchID) + "&token=" + url.QueryEscape(tok) + "&resume=" + url.QueryEscape(resume)
	c, res, err := websocket.DefaultDialer.Dial(u, nil)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, res, err
}

func join(t *testing.T, hs *httptest.Server, matchID, player string) *websocket.Conn {
	t.Helper()
	c, _, err := dial(t, hs, matchID, token(t, matchID, player, time.Minute))
	if err != nil {
		t.Fatalf("%s joins %s: %v", player, matchID, err)
	}
	return c
}

// startGame joins two players to room matchID and waits until both have
// heard the game start.
func startGame(t *testing.T, hs *httptest.Server, matchID, p1, p2 string) (a, b *websocket.Conn) {
	t.Helper()
	a = join(t, hs, matchID, p1)
	b = join(t, hs, matchID, p2)
	next(t, a, "start")
	next(t, b, "start")
	return a, b
}

// next reads messages until one of type typ arrives.
func next(t *testing.T, c *websocket.Conn, typ string) message {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %q: %v", typ, err)
		}
		var m message
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("server sent non-JSON %q", data)
		}
		if m.Type == "welcome" && m.Resume != "" {
			resumeKeys.Store(t.Name()+"/"+m.MatchID+"/"+m.You, m.Resume)
		}
		if m.Type == typ {
			return m
		}
	}
}

// resumeKeys are the resume keys the welcome messages a test read gave
// (next), by test, match and player: joinSeated comes back with them, as
// a client does (the play page keeps its key for the tab).
var resumeKeys sync.Map

func move(t *testing.T, c *websocket.Conn, mv string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"move","move":"`+mv+`"}`)); err != nil {
		t.Fatal(err)
	}
}

func TestFullGame(t *testing.T) {
	t.Parallel()
	s, hs := startServer(t, Config{BestOf: 3})
	a := join(t, hs, "m1", "alice")
	next(t, a, "waiting")
	b := join(t, hs, "m1", "bob")
	for _, c := range []*websocket.Conn{a, b} {
		if m := next(t, c, "start"); len(m.Players) != 2 {
			t.Fatalf("start %+v", m)
		}
	}
	for _, round := range [][2]string{{"rock", "scissors"}, {"paper", "paper"}, {"scissors", "paper"}} {
		move(t, a, round[0])
		move(t, b, round[1])
		next(t, a, "round")
		next(t, b, "round")
	}
	over := next(t, a, "over")
	if over.Winner != "alice" || over.Score["alice"] != 2 || over.Score["bob"] != 0 {
		t.Fatalf("over %+v", over)
	}
	if next(t, b, "over").Winner != "alice" {
		t.Fatal("bob was told another winner")
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Rooms() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Rooms() != 0 {
		t.Fatal("finished room still open")
	}
	// The room is over: its tokens no longer admit anyone.
	if _, res, err := dial(t, hs, "m1", token(t, "m1", "alice", time.Minute)); err == nil || res.StatusCode != http.StatusGone {
		t.Fatalf("rejoin of a finished room: %v", err)
	}
}

func TestJoinRefusals(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{})
	otherKey, _ := jointoken.NewSigner(ed25519.NewKeyFromSeed([]byte("another-key-0123456789abcdefghij")))
	other, _ := otherKey.Sign(jointoken.Grant{MatchID: "m1", PlayerID: "eve", Expires: time.Now().Add(time.Minute)})
	tests := []struct {
		name, matchID, token string
	}{
		{"no token", "m1", ""},
		{"garbage", "m1", "abc.def"},
		{"signed by someone else", "m1", other},
		{"expired", "m1", token(t, "m1", "alice", -time.Second)},
		{"other room", "m1", token(t, "m2", "alice", time.Minute)},
	}
	for _, tt := range tests {
		_, res, err := dial(t, hs, tt.matchID, tt.token)
		if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: err %v res %v, want 403", tt.name, err, res)
			continue
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(body), "join refused") {
			t.Errorf("%s: body %q", tt.name, body)
		}
	}
	// A third player with a valid token for the room is refused: 1v1.
	// (Both are seated first: a join is handed to the room after its
	// handshake, so a third dial could otherwise reach it before b's.)
	startGame(t, hs, "m3", "a", "b")
	c := join(t, hs, "m3", "c")
	if m := next(t, c, "error"); !strings.Contains(m.Error, "full") {
		t.Fatalf("third player: %+v", m)
	}
}

func TestBadMessagesGetErrorsAndTheGameGoesOn(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{BestOf: 1})
	a, b := startGame(t, hs, "m1", "alice", "bob")
	bad := []string{`not json`, `{"type":"dance"}`, `{"type":"move","move":"lizard"}`}
	for _, msg := range bad {
		if err := a.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if m := next(t, a, "error"); m.Error == "" {
			t.Fatalf("%s: empty error", msg)
		}
	}
	if err := a.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	next(t, a, "error")
	move(t, a, "rock")
	move(t, a, "paper") // twice in a round
	if m := next(t, a, "error"); !strings.Contains(m.Error, "already") {
		t.Fatalf("double move: %+v", m)
	}
	move(t, b, "scissors")
	if m := next(t, b, "over"); m.Winner != "alice" {
		t.Fatalf("over %+v", m)
	}
}

func TestOversizedMessageClosesOnlyThatConnection(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{ReconnectGrace: 200 * time.Millisecond})
	a, b := startGame(t, hs, "m1", "alice", "bob")
	if err := a.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 4096))); err != nil {
		t.Fatal(err)
	}
	if m := next(t, b, "player_left"); m.Player != "alice" {
		t.Fatalf("player_left %+v", m)
	}
	if m := next(t, b, "over"); m.Winner != "bob" || !strings.Contains(m.Reason, "alice") {
		t.Fatalf("forfeit: %+v", m)
	}
}

func TestReconnectWithinGrace(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{ReconnectGrace: 5 * time.Second, BestOf: 1})
	a := join(t, hs, "m1", "alice")
	aliceKey := next(t, a, "welcome").Resume
	b := join(t, hs, "m1", "bob")
	next(t, a, "start")
	next(t, b, "start")
	if aliceKey == "" {
		t.Fatal("no resume key in the welcome message")
	}
	a.Close()
	next(t, b, "player_left")
	// A copy of alice's token alone no longer admits: it was used.
	thief := join(t, hs, "m1", "alice")
	if m := next(t, thief, "error"); !strings.Contains(m.Error, "used already") {
		t.Fatalf("a used token admitted again: %+v", m)
	}
	// Alice comes back with her resume key.
	c, _, err := dialResume(t, hs, "m1", token(t, "m1", "alice", time.Minute), aliceKey)
	if err != nil {
		t.Fatal(err)
	}
	a2 := c
	next(t, a2, "resume")
	move(t, a2, "paper")
	move(t, b, "rock")
	if m := next(t, b, "over"); m.Winner != "alice" {
		t.Fatalf("over %+v", m)
	}
}

func TestPlayPageIsServed(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{})
	res, err := http.Get(hs.URL + "/play?room=m1&token=x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "Rock, paper, scissors") {
		t.Fatalf("play page: %d", res.StatusCode)
	}
}

// An ended room's id is forgotten once EndedMemory, and the life of the
// tokens it admitted, are over: a long-lived server's memory stays flat.
func TestEndedRoomsAreForgottenAfterEndedMemory(t *testing.T) {
	t.Parallel()
	s, skew, hs := startSkewed(t, Config{BestOf: 1, EndedMemory: 50 * time.Millisecond})
	play := func(matchID string, ttl time.Duration) {
		join := func(player string) *websocket.Conn {
			c, _, err := dial(t, hs, matchID, token(t, matchID, player, ttl))
			if err != nil {
				t.Fatalf("%s joins %s: %v", player, matchID, err)
			}
			return c
		}
		a, b := join("a"), join("b")
		next(t, a, "start")
		next(t, b, "start")
		move(t, a, "rock")
		move(t, b, "scissors")
		next(t, a, "over")
		deadline := time.Now().Add(5 * time.Second)
		for s.Rooms() != 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	play("m1", time.Minute)
	skew.Store(int64(2 * time.Minute)) // past its memory and its tokens' life
	play("m2", 5*time.Minute)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ended["m1"]; ok || len(s.ended) != 1 {
		t.Fatalf("ended = %v, want only m2", s.ended)
	}
}

func TestMaxRoomsAndStatus(t *testing.T) {
	t.Parallel()
	s, hs := startServer(t, Config{MaxRooms: 1})
	join(t, hs, "m1", "a")
	if _, res, err := dial(t, hs, "m2", token(t, "m2", "b", time.Minute)); err == nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second room on a server of one: %v", err)
	}
	join(t, hs, "m1", "b") // the open room still takes its players
	res, err := http.Get(hs.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var st play.Status
	_ = json.NewDecoder(res.Body).Decode(&st)
	res.Body.Close()
	if want := (play.Status{Rooms: 1, MaxRooms: 1, Open: []string{"m1"}}); !reflect.DeepEqual(st, want) || !reflect.DeepEqual(s.Status(), want) {
		t.Fatalf("status %+v", st)
	}
}

func TestIdlePlayerForfeits(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{IdleTimeout: 300 * time.Millisecond})
	a, _ := startGame(t, hs, "m1", "alice", "bob")
	move(t, a, "rock") // bob never moves
	m := next(t, a, "over")
	if m.Winner != "alice" || !strings.Contains(m.Reason, "bob did not move") {
		t.Fatalf("over %+v", m)
	}
}
