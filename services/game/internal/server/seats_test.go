package server

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
)

func seatToken(t *testing.T, matchID, player string, seat jointoken.Seat) string {
	t.Helper()
	tok, err := signer.Sign(jointoken.Grant{MatchID: matchID, PlayerID: player, Expires: time.Now().Add(time.Minute), Seat: seat})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// seated is a player and the seat its token gives.
type seated struct {
	name string
	team int
}

// joinSeats joins players to room matchID, each with a token seating it
// on its team of teams of size, one after the other (each waits for its
// welcome, so the order is theirs); then every one hears the start.
func joinSeats(t *testing.T, dial func(string) *websocket.Conn, teams, size int, players ...seated) map[string]*websocket.Conn {
	t.Helper()
	conns := map[string]*websocket.Conn{}
	for _, p := range players {
		c := dial(seatTokenFor(t, p, teams, size))
		next(t, c, "welcome")
		conns[p.name] = c
	}
	return conns
}

// seatRoom is the room of the seat tests without Agones.
const seatRoom = "room-1"

func seatTokenFor(t *testing.T, p seated, teams, size int) string {
	t.Helper()
	return seatToken(t, seatRoom, p.name, jointoken.Seat{Team: p.team, Teams: teams, TeamSize: size})
}

// dialer dials the room at url() with a token, failing the test on error.
func dialer(t *testing.T, url func() string) func(string) *websocket.Conn {
	return func(tok string) *websocket.Conn {
		t.Helper()
		c, _, err := websocket.DefaultDialer.Dial(url()+"&token="+tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
}

// Without Agones the tokens' seats shape the room: a 2v2 starts when its
// four seats are taken, the team with more duel wins takes a round, and
// the first team to two rounds (best of 3) wins.
func TestTwoVersusTwoFromTokenSeats(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{BestOf: 3})
	dial := dialer(t, func() string { return "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws?room=" + seatRoom })
	first := dial(seatTokenFor(t, seated{"a1", 0}, 2, 2))
	if m := next(t, first, "waiting"); m.Seats != 4 || !slices.Equal(m.Players, []string{"a1"}) {
		t.Fatalf("waiting %+v", m)
	}
	conns := joinSeats(t, dial, 2, 2, seated{"b1", 1}, seated{"a2", 0}, seated{"b2", 1})
	conns["a1"] = first
	for p, c := range conns {
		m := next(t, c, "start")
		if len(m.Teams) != 2 || !slices.Equal(m.Teams[0], []string{"a1", "a2"}) || !slices.Equal(m.Teams[1], []string{"b1", "b2"}) {
			t.Fatalf("%s heard start %+v", p, m)
		}
	}
	for round := 1; round <= 2; round++ {
		for _, p := range []string{"a1", "a2", "b1", "b2"} {
			mv := "rock"
			if p[0] == 'b' {
				mv = "scissors"
			}
			move(t, conns[p], mv)
		}
		m := next(t, conns["b2"], "round")
		r, _ := m.Round.(map[string]any)
		if w, _ := r["winners"].([]any); len(w) != 2 || m.Score["a2"] != round || m.Score["b1"] != 0 {
			t.Fatalf("round %d: %+v", round, m)
		}
	}
	for p, c := range conns {
		if m := next(t, c, "over"); !slices.Equal(m.Winners, []string{"a1", "a2"}) || m.Winner != "" {
			t.Fatalf("%s heard over %+v", p, m)
		}
	}
}

// A free-for-all of three: best-of rounds are all played, a point per
// opponent beaten, the highest total wins.
func TestFreeForAllFromTokenSeats(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{BestOf: 3})
	dial := dialer(t, func() string { return "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws?room=" + seatRoom })
	conns := joinSeats(t, dial, 3, 1, seated{"x", 0}, seated{"y", 1}, seated{"z", 2})
	for _, c := range conns {
		next(t, c, "start")
	}
	for round := 1; round <= 3; round++ {
		move(t, conns["x"], "rock")
		move(t, conns["y"], "scissors")
		move(t, conns["z"], "scissors")
		if m := next(t, conns["y"], "round"); m.Score["x"] != 2*round || m.Score["y"] != 0 {
			t.Fatalf("round %d: %+v", round, m)
		}
	}
	if m := next(t, conns["z"], "over"); m.Winner != "x" || m.Score["x"] != 6 {
		t.Fatalf("over %+v", m)
	}
}

// The players who keep a free-for-all waiting for their move forfeit
// when the room idles; the others share the win by points.
func TestIdleFreeForAllPlayerForfeits(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{BestOf: 3, IdleTimeout: 300 * time.Millisecond})
	dial := dialer(t, func() string { return "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws?room=" + seatRoom })
	conns := joinSeats(t, dial, 3, 1, seated{"x", 0}, seated{"y", 1}, seated{"z", 2})
	move(t, conns["x"], "rock")
	move(t, conns["y"], "rock") // z never moves
	if m := next(t, conns["x"], "over"); !slices.Equal(m.Winners, []string{"x", "y"}) || !strings.Contains(m.Reason, "z did not move") {
		t.Fatalf("over %+v", m)
	}
}

// The first token fixes the room's shape: a token with another shape, or
// none, is refused before the WebSocket opens; a full team refuses more.
func TestSeatRefusals(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{})
	base := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws?room=" + seatRoom
	dial := dialer(t, func() string { return base })
	a1 := dial(seatTokenFor(t, seated{"a1", 0}, 2, 2))
	next(t, a1, "waiting")
	for name, tok := range map[string]string{
		"another shape": seatTokenFor(t, seated{"c", 0}, 3, 1),
		"no seat":       token(t, seatRoom, "c", time.Minute),
	} {
		_, res, err := websocket.DefaultDialer.Dial(base+"&token="+tok, nil)
		if err == nil || res.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(res.Body)
		if !strings.Contains(string(body), "seat") {
			t.Fatalf("%s: %q", name, body)
		}
	}
	next(t, dial(seatTokenFor(t, seated{"a2", 0}, 2, 2)), "welcome")
	if m := next(t, dial(seatTokenFor(t, seated{"a3", 0}, 2, 2)), "error"); !strings.Contains(m.Error, "team 1 is full") {
		t.Fatalf("a third player on a team of two: %+v", m)
	}

	// A room of two opened by a token without a seat refuses a seated one.
	legacy := join(t, hs, "old", "p")
	next(t, legacy, "waiting")
	if _, res, err := dialOnce(hs.URL, "old", seatToken(t, "old", "q", jointoken.Seat{Team: 1, Teams: 2, TeamSize: 1})); err == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("a seated token in a room of two without seats: %v", err)
	}
}

// dialOnce dials room on the game server at base with tok and hangs up.
func dialOnce(base, room, tok string) (*websocket.Conn, *http.Response, error) {
	c, res, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws?room="+room+"&token="+tok, nil)
	if c != nil {
		c.Close()
	}
	return c, res, err
}

// With Agones the allocation seats the players; a token whose seat says
// otherwise is refused.
func TestAllocatedSeatMustMatchTheToken(t *testing.T) {
	t.Parallel()
	_, hs, fake := startAgones(t, Config{})
	allocate(t, fake, "m1", []string{"a1", "a2"}, []string{"b1", "b2"})
	if _, res, err := dialOnce(hs.URL, "m1", seatToken(t, "m1", "a1", jointoken.Seat{Team: 1, Teams: 2, TeamSize: 2})); err == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("a1 with a token for team 2: %v", err)
	}
	c, _, err := dial(t, hs, "m1", seatToken(t, "m1", "a1", jointoken.Seat{Team: 0, Teams: 2, TeamSize: 2}))
	if err != nil {
		t.Fatal(err)
	}
	if m := next(t, c, "waiting"); m.Seats != 4 {
		t.Fatalf("waiting %+v", m)
	}
}
