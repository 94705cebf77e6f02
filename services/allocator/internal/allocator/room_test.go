package allocator_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
)

// early is a match that starts early: these teams of a room of teams
// teams of size seats each.
func early(id, mode string, teams, size int, players ...[]string) events.Match {
	m := teamMatch(id, mode, false, players...)
	m.Teams, m.TeamSize, m.AcceptsBackfill = teams, size, true
	return m
}

// TestRoomOfAMatchThatStartsEarly: a match that starts early gets a
// room of its full shape, the teams no ticket fills empty ([] in the
// annotation, which the game server reads back); one that names a
// shape no room has, or tickets the shape has no seat for, is refused
// as permanent and invalid.
func TestRoomOfAMatchThatStartsEarly(t *testing.T) {
	t.Parallel()
	room, err := allocator.RoomOf(early("m", "ffa", 4, 1, []string{"a"}, []string{"b"}, []string{"c"}))
	want := agones.Room{Mode: "ffa", Teams: [][]string{{"a"}, {"b"}, {"c"}, {}}, AcceptsBackfill: true, TeamSize: 1}
	if err != nil || !reflect.DeepEqual(room, want) {
		t.Fatalf("ffa of 4 opened with 3: %+v %v", room, err)
	}
	if v := agones.EncodeRoom(room); !strings.Contains(v, `["c"],[]]`) {
		t.Fatalf("annotation %s: the empty team is not []", v)
	}
	if got, err := agones.DecodeRoom(agones.EncodeRoom(room)); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("the game server reads the room as %+v, %v", got, err)
	}
	room, err = allocator.RoomOf(early("m", "3x2", 3, 2, []string{"a", "b"}, []string{"c", "d"}))
	if err != nil || !reflect.DeepEqual(room.Teams, [][]string{{"a", "b"}, {"c", "d"}, {}}) || room.TeamSize != 2 {
		t.Fatalf("3x2 opened with 2 teams: %+v %v", room, err)
	}
	// The shape the matcher gives wins over the tickets' (a team short
	// of its size has free seats too); it need not leave a seat free.
	for name, m := range map[string]events.Match{
		"a short team":     early("m", "3x2", 3, 2, []string{"a", "b"}, []string{"c"}),
		"every seat taken": early("m", "2v2", 2, 2, []string{"a", "b"}, []string{"c", "d"}),
	} {
		if _, err := allocator.RoomOf(m); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	teamOnly, sizeOnly, filling := early("m", "ffa", 4, 1, []string{"a"}, []string{"b"}), early("m", "ffa", 4, 1, []string{"a"}, []string{"b"}), early("m", "ffa", 4, 1, []string{"a"}, []string{"b"})
	teamOnly.TeamSize, sizeOnly.Teams = 0, 0
	filling.Backfill = &events.MatchBackfill{MatchID: "r", BackfillID: "r.1"}
	for name, m := range map[string]events.Match{
		"a team past the room's":    early("m", "ffa", 3, 1, []string{"a"}, []string{"b"}, []string{"c"}, []string{"d"}),
		"a team over its size":      early("m", "3x2", 3, 2, []string{"a", "b", "x"}, []string{"c", "d"}),
		"players on one team":       early("m", "3x2", 3, 2, []string{"a", "b"}),
		"one team":                  early("m", "ffa", 1, 2, []string{"a"}, []string{"b"}),
		"more seats than a room":    early("m", "big", 3, 34, []string{"a"}, []string{"b"}),
		"seats that overflow":       early("m", "big", 1<<40, 1<<40, []string{"a"}, []string{"b"}),
		"negative size":             early("m", "ffa", 4, -1, []string{"a"}, []string{"b"}),
		"teams without a team size": teamOnly,
		"a team size without teams": sizeOnly,
		"a shape and a backfill":    filling,
	} {
		if _, err := allocator.RoomOf(m); !errors.Is(err, allocator.ErrPermanent) || !errors.Is(err, events.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestTokensOfAMatchThatStartsEarly: each join token of a match that
// starts early seats its player on their team of the room's full shape
// and says the game starts with the match's players; a match that names
// its shape but fills every seat starts full (Starts 0).
func TestTokensOfAMatchThatStartsEarly(t *testing.T) {
	t.Parallel()
	e := start(t, &counting{}, allocator.Config{})
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	for _, m := range []events.Match{
		early("m-ffa", "ffa", 4, 1, []string{"a"}, []string{"b"}, []string{"c"}),
		early("m-3x2", "3x2", 3, 2, []string{"d", "e"}, []string{"f", "g"}),
		early("m-full", "2v2", 2, 2, []string{"h", "i"}, []string{"j", "k"}),
	} {
		if err := e.pub.Match(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == 11 }, "no assignments")
	ffa := func(team int) jointoken.Seat {
		return jointoken.Seat{Team: team, Teams: 4, TeamSize: 1, AcceptsBackfill: true, Starts: 3}
	}
	threes := func(team int) jointoken.Seat {
		return jointoken.Seat{Team: team, Teams: 3, TeamSize: 2, AcceptsBackfill: true, Starts: 4}
	}
	full := func(team int) jointoken.Seat {
		return jointoken.Seat{Team: team, Teams: 2, TeamSize: 2, AcceptsBackfill: true}
	}
	want := map[string]jointoken.Seat{
		"a": ffa(0), "b": ffa(1), "c": ffa(2),
		"d": threes(0), "e": threes(0), "f": threes(1), "g": threes(1),
		"h": full(0), "i": full(0), "j": full(1), "k": full(1),
	}
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
