package allocator_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
)

// teamMatch is a match of mode with these teams: a ticket per team (a
// party) when party is set, else a ticket per player.
func teamMatch(id, mode string, party bool, teams ...[]string) events.Match {
	m := events.Match{SchemaVersion: events.SchemaVersion, MatchID: id, Mode: mode, Region: "eu", Tier: "gold"}
	for team, players := range teams {
		if party {
			m.Tickets = append(m.Tickets, events.MatchTicket{TicketID: "t-" + players[0], Players: players, Team: team})
			continue
		}
		for _, p := range players {
			m.Tickets = append(m.Tickets, events.MatchTicket{TicketID: "t-" + p, Players: []string{p}, Team: team})
		}
	}
	return m
}

// TestRoomOf: the room is the match's players team by team; a match no
// room can seat is refused as permanent and invalid.
func TestRoomOf(t *testing.T) {
	t.Parallel()
	room, err := allocator.RoomOf(teamMatch("m", "2v2", true, []string{"c", "d"}, []string{"a", "b"}))
	if err != nil || !reflect.DeepEqual(room, agones.Room{Mode: "2v2", Teams: [][]string{{"c", "d"}, {"a", "b"}}}) {
		t.Fatalf("2v2: %+v %v", room, err)
	}
	if _, err := agones.DecodeRoom(agones.EncodeRoom(room)); err != nil {
		t.Fatalf("the game server cannot read the room: %v", err)
	}
	if room, err := allocator.RoomOf(teamMatch("m", "ffa", false, []string{"a"}, []string{"b"}, []string{"c"})); err != nil || len(room.Teams) != 3 {
		t.Fatalf("ffa: %+v %v", room, err)
	}
	skip := teamMatch("m", "1v1", false, []string{"a"}, []string{"b"})
	skip.Tickets[1].Team = 2
	negative := teamMatch("m", "1v1", false, []string{"a"}, []string{"b"})
	negative.Tickets[0].Team = -1
	huge := teamMatch("m", "1v1", false, []string{"a"}, []string{"b"})
	huge.Tickets[1].Team = 1 << 30
	for name, m := range map[string]events.Match{
		"one team":                           teamMatch("m", "1v1", false, []string{"a", "b"}),
		"uneven teams":                       teamMatch("m", "2v2", false, []string{"a", "b"}, []string{"c"}),
		"a team skipped":                     skip,
		"negative team":                      negative,
		"huge team index":                    huge,
		"a player twice":                     teamMatch("m", "1v1", false, []string{"a"}, []string{"a"}),
		"too many":                           teamMatch("m", "big", false, names("x", 51), names("y", 51)),
		"id too long for its annotation key": teamMatch(strings.Repeat("m", agones.MaxMatchIDLen+1), "1v1", false, []string{"a"}, []string{"b"}),
	} {
		if _, err := allocator.RoomOf(m); !errors.Is(err, allocator.ErrPermanent) || !errors.Is(err, events.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// TestTokensCarryTheSeat: each player's join token seats them on their
// team of the match: team index, teams, team size.
func TestTokensCarryTheSeat(t *testing.T) {
	t.Parallel()
	e := start(t, &counting{}, allocator.Config{})
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	if err := e.pub.Match(t.Context(), teamMatch("m-2v2", "2v2", true, []string{"a", "b"}, []string{"c", "d"})); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == 4 }, "no assignments")
	red, blue := jointoken.Seat{Team: 0, Teams: 2, TeamSize: 2}, jointoken.Seat{Team: 1, Teams: 2, TeamSize: 2}
	want := map[string]jointoken.Seat{"a": red, "b": red, "c": blue, "d": blue}
	for _, msg := range res() {
		r, _ := events.DecodeResult(msg.Data)
		if r.Status != events.StatusAssigned {
			t.Fatalf("result %+v", r)
		}
		g, err := joinKeys.Verify(r.Assignment.JoinToken, time.Now())
		if err != nil || g.Seat != want[r.PlayerID] {
			t.Errorf("%s: seat %+v %v, want %+v", r.PlayerID, g.Seat, err, want[r.PlayerID])
		}
	}
}

// TestUnseatableMatchFailsWithoutAServer: a match no room can seat is
// failed (permanent: RoomOf), its players told why, and no server is
// taken for it.
func TestUnseatableMatchFailsWithoutAServer(t *testing.T) {
	t.Parallel()
	b := &counting{}
	e := start(t, b, allocator.Config{})
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	if err := e.pub.Match(t.Context(), teamMatch("m-uneven", "2v2", false, []string{"a", "b"}, []string{"c"})); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == 3 && len(dls()) == 1 }, "players not told")
	for _, msg := range res() {
		r, _ := events.DecodeResult(msg.Data)
		if r.Status != events.StatusFailed || !strings.Contains(r.Reason, "cannot be seated") {
			t.Fatalf("result %+v", r)
		}
	}
	var d events.DeadLetter
	if err := json.Unmarshal(dls()[0].Data, &d); err != nil || !strings.Contains(d.Reason, "team 1 has 1 players") {
		t.Fatalf("dead letter %+v %v", d, err)
	}
	if n := b.calls.Load(); n != 0 {
		t.Fatalf("%d servers taken for a match no room seats", n)
	}
}
