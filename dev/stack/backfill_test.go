package stack_test

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/dev/stack"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// backfillRules is the rule set of TestBackfillEndToEnd: a 2v2 whose
// rooms accept backfill.
const backfillRules = `{"modes":[{"name":"2v2","teams":2,"team_size":2,"max_wait":"2m","backfill":true}]}`

// queue2v2 queues player for a 2v2 in eu over HTTP and returns the
// ticket's id and the player's token.
func queue2v2(t *testing.T, fe, player string) (id, token string) {
	t.Helper()
	return queueFor(t, fe, player, "2v2")
}

// queueFor queues player for mode in eu at skill 1650 over HTTP and
// returns the ticket's id and the player's token.
func queueFor(t *testing.T, fe, player, mode string) (id, token string) {
	t.Helper()
	token = devToken(t, fe, player)
	var v ticketView
	code := httpJSON(t, token, http.MethodPost, fe+"/v1/tickets", `{"player_id":"`+player+`","mode":"`+mode+`","skill":1650,"region":"eu"}`, &v)
	if code != http.StatusAccepted || v.TicketID == "" {
		t.Fatalf("POST %s: %d %+v", player, code, v)
	}
	return v.TicketID, token
}

// assigned waits until ticket id is assigned and returns its view.
func assigned(t *testing.T, fe, token, id string, within time.Duration) ticketView {
	t.Helper()
	var v ticketView
	testkit.Eventually(t, within, func() bool {
		httpJSON(t, token, http.MethodGet, fe+"/v1/tickets/"+id, "", &v)
		return v.Status == "assigned"
	}, "ticket %s is %q (%s)", id, v.Status, v.Reason)
	return v
}

// roomMsg is what a room tells its players, as far as this test reads it.
type roomMsg struct {
	Type   string     `json:"type"`
	Player string     `json:"player"`
	Teams  [][]string `json:"teams"`
	Error  string     `json:"error"`
}

// readUntil reads c until a message of type typ, and returns it.
func readUntil(t *testing.T, c *websocket.Conn, typ string) roomMsg {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %q: %v", typ, err)
		}
		var m roomMsg
		_ = json.Unmarshal(data, &m)
		if m.Type == typ {
			return m
		}
		if m.Type == "error" || m.Type == "over" {
			t.Fatalf("waiting for %q: %s", typ, data)
		}
	}
}

// awaitBackfillRequest waits until room, on the game server of
// assignment URL u, asks for players (its /status), checks that it asks
// for seats, and returns the server's base URL.
func awaitBackfillRequest(t *testing.T, u, room string, seats []int) string {
	t.Helper()
	base, _, err := play.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	var req play.Backfill
	testkit.Eventually(t, 10*time.Second, func() bool {
		for _, b := range gameStatus(t, base).Backfill {
			if b.MatchID == room {
				req = b
				return true
			}
		}
		return false
	}, "room %s never asked for a player", room)
	if !slices.Equal(req.Seats, seats) {
		t.Fatalf("room %s asks for %v, want %v", room, req.Seats, seats)
	}
	return base
}

// gameStatus is a game server's /status.
func gameStatus(t *testing.T, base string) play.Status {
	t.Helper()
	var st play.Status
	res, err := http.Get(base + play.StatusPath)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestBackfillEndToEnd is issue #18's "backfill end to end" on the local
// stack, every service a real process: four players play a 2v2; one
// leaves for good (their reconnect grace runs out), and the room asks
// for a player on their team (/status); a player who queues then is
// matched into that room by the matcher and sent there by the allocator,
// with a valid join token for the room on the free seat, and is admitted:
// the room's teams name them in the place of the one who left, and the
// room asks for no one any more. (The Agones players List following the
// room is the game server's, tested with its fake SDK.)
func TestBackfillEndToEnd(t *testing.T) {
	rulesFile := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(rulesFile, []byte(backfillRules), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, func(c *stack.Config) {
		c.Env = append(c.Env, "RULES="+rulesFile, "RECONNECT_GRACE=1s")
	})
	fe := s.FrontendURL()
	key, err := jointoken.LoadPrivateKey(s.JoinKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	keys := jointoken.NewKeys(key.Public().(ed25519.PublicKey))

	// Four players, one room.
	players := []string{"bf-1", "bf-2", "bf-3", "bf-4"}
	views := map[string]ticketView{}
	ids, toks := map[string]string{}, map[string]string{}
	for _, p := range players {
		ids[p], toks[p] = queue2v2(t, fe, p)
	}
	for _, p := range players {
		views[p] = assigned(t, fe, toks[p], ids[p], 20*time.Second)
	}
	room, server := views["bf-1"].Assignment.Room, views["bf-1"].Assignment.Server
	for _, p := range players {
		if a := views[p].Assignment; a.Room != room || a.Server != server {
			t.Fatalf("%s assigned to room %s on %s, %s to %s on %s", p, a.Room, a.Server, "bf-1", room, server)
		}
	}
	conns := map[string]*websocket.Conn{}
	for _, p := range players {
		conns[p] = join(t, views[p].Assignment.URL)
	}
	var start roomMsg
	for _, p := range players {
		start = readUntil(t, conns[p], "start")
	}
	leaver := "bf-4"
	team := slices.IndexFunc(start.Teams, func(ps []string) bool { return slices.Contains(ps, leaver) })
	if team < 0 {
		t.Fatalf("%s on no team of %v", leaver, start.Teams)
	}

	// bf-4 leaves for good: after the grace its seat is free, and the room asks.
	_ = conns[leaver].Close()
	if gone := readUntil(t, conns["bf-1"], "player_gone"); gone.Player != leaver {
		t.Fatalf("player_gone names %q, want %s", gone.Player, leaver)
	}
	want := make([]int, 2)
	want[team] = 1
	base := awaitBackfillRequest(t, views["bf-1"].Assignment.URL, room, want)

	// A player who queues now is sent to that room, on that seat.
	id, tok := queue2v2(t, fe, "bf-5")
	v := assigned(t, fe, tok, id, 30*time.Second)
	a := v.Assignment
	if a.Room != room || a.Server != server {
		t.Fatalf("bf-5 assigned to room %s on %s, want the running room %s on %s", a.Room, a.Server, room, server)
	}
	g, err := keys.Verify(a.JoinToken, time.Now())
	if err != nil {
		t.Fatalf("bf-5's join token: %v", err)
	}
	if seat := (jointoken.Seat{Team: team, Teams: 2, TeamSize: 2, AcceptsBackfill: true}); g.MatchID != room || g.PlayerID != "bf-5" || g.Seat != seat {
		t.Fatalf("bf-5's grant %+v, want room %s and seat %+v", g, room, seat)
	}

	// Admitted: the room's teams have bf-5 where bf-4 was, and it asks no more.
	c := join(t, a.URL)
	readUntil(t, c, "welcome")
	resumed := readUntil(t, conns["bf-1"], "resume")
	if !slices.Contains(resumed.Teams[team], "bf-5") || slices.Contains(slices.Concat(resumed.Teams...), leaver) {
		t.Fatalf("the room's teams after the backfill: %v", resumed.Teams)
	}
	if n := len(slices.Concat(resumed.Teams...)); n != 4 {
		t.Fatalf("%d players in the room after the backfill: %v", n, resumed.Teams)
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		return !slices.ContainsFunc(gameStatus(t, base).Backfill, func(b play.Backfill) bool { return b.MatchID == room })
	}, "the room still asks after its seat was filled: %v", fmt.Sprint(gameStatus(t, base).Backfill))
}
