package stack_test

import (
	"crypto/ed25519"
	"fmt"
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

// earlyRules is the rule set of TestFreeForAllStartsEarly: a free-for-all
// of four whose match may open its room with three players once the
// longest-waiting of them has waited 2 s, and whose rooms ask for
// players to fill their free seats.
const earlyRules = `{"modes":[{"name":"ffa","teams":4,"team_size":1,"max_wait":"2m","backfill":true,
"start_early":{"min_teams":3,"after":"2s"}}]}`

// TestFreeForAllStartsEarly is issue #18's "a free-for-all room that opens
// early" on the local stack, every service a real process: three players
// queue for a free-for-all of four, and nobody else; their match opens a
// room of four seats with the three of them (each join token has the
// room's full shape and says the game starts with three), the game
// starts when they are in, and the room asks at once for a player on the
// free seat; a fourth player who queues then is sent to that room on that
// seat with a backfill token, is admitted, and the room asks no more.
func TestFreeForAllStartsEarly(t *testing.T) {
	rulesFile := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(rulesFile, []byte(earlyRules), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, func(c *stack.Config) { c.Env = append(c.Env, "RULES="+rulesFile) })
	fe := s.FrontendURL()
	key, err := jointoken.LoadPrivateKey(s.JoinKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	keys := jointoken.NewKeys(key.Public().(ed25519.PublicKey))

	players := []string{"early-1", "early-2", "early-3"}
	views := map[string]ticketView{}
	ids, toks := map[string]string{}, map[string]string{}
	for _, p := range players {
		ids[p], toks[p] = queueFor(t, fe, p, "ffa")
	}
	for _, p := range players {
		views[p] = assigned(t, fe, toks[p], ids[p], 30*time.Second)
	}
	room, server := views[players[0]].Assignment.Room, views[players[0]].Assignment.Server
	teams := map[int]bool{}
	for _, p := range players {
		a := views[p].Assignment
		if a.Room != room || a.Server != server {
			t.Fatalf("%s assigned to room %s on %s, %s to %s on %s", p, a.Room, a.Server, players[0], room, server)
		}
		g, err := keys.Verify(a.JoinToken, time.Now())
		if err != nil {
			t.Fatalf("%s's join token: %v", p, err)
		}
		if g.Seat.Teams != 4 || g.Seat.TeamSize != 1 || g.Seat.Starts != 3 || !g.Seat.AcceptsBackfill {
			t.Fatalf("%s's seat %+v, want one of 4 teams of 1, starting with 3, accepting backfill", p, g.Seat)
		}
		teams[g.Seat.Team] = true
	}
	free := slices.IndexFunc([]int{0, 1, 2, 3}, func(team int) bool { return !teams[team] })
	if len(teams) != 3 || free < 0 {
		t.Fatalf("the three players sit on teams %v, want three different teams of four", teams)
	}

	conns := map[string]*websocket.Conn{}
	for _, p := range players {
		conns[p] = join(t, views[p].Assignment.URL)
	}
	for _, p := range players {
		start := readUntil(t, conns[p], "start")
		if n := len(slices.Concat(start.Teams...)); n != 3 {
			t.Fatalf("%s's game starts with %d players: %v", p, n, start.Teams)
		}
	}

	// The room asks for its free seat as soon as the game is on.
	want := make([]int, 4)
	want[free] = 1
	base := awaitBackfillRequest(t, views[players[0]].Assignment.URL, room, want)

	// A fourth player who queues now is sent to that room, on that seat.
	id, tok := queueFor(t, fe, "early-4", "ffa")
	a := assigned(t, fe, tok, id, 30*time.Second).Assignment
	if a.Room != room || a.Server != server {
		t.Fatalf("early-4 assigned to room %s on %s, want the running room %s on %s", a.Room, a.Server, room, server)
	}
	g, err := keys.Verify(a.JoinToken, time.Now())
	if err != nil {
		t.Fatalf("early-4's join token: %v", err)
	}
	if seat := (jointoken.Seat{Team: free, Teams: 4, TeamSize: 1, AcceptsBackfill: true}); g.MatchID != room || g.Seat != seat {
		t.Fatalf("early-4's grant %+v, want room %s and seat %+v", g, room, seat)
	}
	c := join(t, a.URL)
	readUntil(t, c, "welcome")
	resumed := readUntil(t, conns[players[0]], "resume")
	if !slices.Contains(resumed.Teams[free], "early-4") || len(slices.Concat(resumed.Teams...)) != 4 {
		t.Fatalf("the room's teams after the backfill: %v", resumed.Teams)
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		return !slices.ContainsFunc(gameStatus(t, base).Backfill, func(b play.Backfill) bool { return b.MatchID == room })
	}, "the room still asks after its seat was filled: %v", fmt.Sprint(gameStatus(t, base).Backfill))
}
