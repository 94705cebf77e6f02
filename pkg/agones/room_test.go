package agones

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// TestDecodeRoom: what the allocator writes reads back; a field a newer
// allocator adds is ignored; a room the game server could not seat is an
// error.
func TestDecodeRoom(t *testing.T) {
	t.Parallel()
	want := Room{Mode: "2v2", Teams: [][]string{{"a", "b"}, {"c", "d"}}}
	for name, v := range map[string]string{
		"as written":       EncodeRoom(want),
		"an unknown field": `{"mode":"2v2","teams":[["a","b"],["c","d"]],"future":true}`,
	} {
		if got, err := DecodeRoom(v); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v %v", name, got, err)
		}
	}
	many := make([]string, play.MaxPlayers+1)
	for i := range many {
		many[i] = fmt.Sprintf(`["p%d"]`, i)
	}
	for name, v := range map[string]string{
		"not JSON":        `a,b`,
		"no teams":        `{"mode":"1v1"}`,
		"one team":        `{"mode":"1v1","teams":[["a","b"]]}`,
		"an empty team":   `{"mode":"1v1","teams":[["a"],[]]}`,
		"uneven teams":    `{"mode":"2v2","teams":[["a","b"],["c"]]}`,
		"an empty player": `{"mode":"1v1","teams":[["a"],[""]]}`,
		"a player twice":  `{"mode":"1v1","teams":[["a"],["a"]]}`,
		"data after":      `{"mode":"1v1","teams":[["a"],["b"]]} {}`,
		"too many":        `{"mode":"ffa","teams":[` + strings.Join(many, ",") + `]}`,
	} {
		if got, err := DecodeRoom(v); err == nil {
			t.Errorf("%s: accepted as %+v", name, got)
		}
	}
}

// TestRoomBackfill: a room that accepts backfill says so; one that does
// not writes the room as before.
func TestRoomBackfill(t *testing.T) {
	t.Parallel()
	r := Room{Mode: "2v2", Teams: [][]string{{"a", "b"}, {"c", "d"}}, AcceptsBackfill: true}
	if v := EncodeRoom(r); v != `{"mode":"2v2","teams":[["a","b"],["c","d"]],"backfill":true}` {
		t.Fatalf("EncodeRoom = %s", v)
	}
	if got, err := DecodeRoom(EncodeRoom(r)); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("DecodeRoom = %+v, %v", got, err)
	}
	r.AcceptsBackfill = false
	if v := EncodeRoom(r); v != `{"mode":"2v2","teams":[["a","b"],["c","d"]]}` {
		t.Fatalf("EncodeRoom without backfill = %s", v)
	}
}

// TestRoomThatStartsEarly: a room with more seats than players (TeamSize)
// writes its empty teams as [] and reads back; its teams may be short or
// empty but never longer than TeamSize, and its seats are bounded as a
// room's players are. A room without TeamSize reads as before.
func TestRoomThatStartsEarly(t *testing.T) {
	t.Parallel()
	r := Room{Mode: "ffa", Teams: [][]string{{"a"}, {"b"}, {"c"}, nil}, AcceptsBackfill: true, TeamSize: 1}
	if v := EncodeRoom(r); v != `{"mode":"ffa","teams":[["a"],["b"],["c"],[]],"backfill":true,"team_size":1}` {
		t.Fatalf("EncodeRoom = %s", v)
	}
	want := Room{Mode: "ffa", Teams: [][]string{{"a"}, {"b"}, {"c"}, {}}, AcceptsBackfill: true, TeamSize: 1}
	if got, err := DecodeRoom(EncodeRoom(r)); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeRoom = %+v, %v", got, err)
	}
	if r.Teams[3] != nil {
		t.Fatal("EncodeRoom changed the room it was given")
	}
	for name, v := range map[string]string{
		"2v2v2 with two teams":  `{"mode":"3x2","teams":[["a","b"],["c","d"],[]],"team_size":2}`,
		"teams short":           `{"mode":"3x2","teams":[["a"],["c","d"],["e"]],"team_size":2}`,
		"every seat taken":      `{"mode":"2v2","teams":[["a","b"],["c","d"]],"team_size":2}`,
		"an empty team first":   `{"mode":"ffa","teams":[[],["a"],["b"]],"team_size":1}`,
		"100 seats":             `{"mode":"big","teams":[["a"],["b"]],"team_size":50}`,
		"team_size 0 is absent": `{"mode":"2v2","teams":[["a","b"],["c","d"]],"team_size":0}`,
	} {
		if _, err := DecodeRoom(v); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, v := range map[string]string{
		"a team too long":         `{"mode":"2v2","teams":[["a","b","c"],["d"]],"team_size":2}`,
		"negative team size":      `{"mode":"2v2","teams":[["a"],["b"]],"team_size":-1}`,
		"team size too large":     `{"mode":"2v2","teams":[["a"],["b"]],"team_size":101}`,
		"too many seats":          `{"mode":"big","teams":[["a"],["b"],[]],"team_size":34}`,
		"seats that overflow":     `{"mode":"big","teams":[["a"],["b"]],"team_size":4611686018427387904}`,
		"one player":              `{"mode":"ffa","teams":[["a"],[],[]],"team_size":1}`,
		"one team with players":   `{"mode":"3x2","teams":[["a","b"],[],[]],"team_size":2}`,
		"no player":               `{"mode":"ffa","teams":[[],[]],"team_size":1}`,
		"one team":                `{"mode":"ffa","teams":[["a"]],"team_size":2}`,
		"empty without team size": `{"mode":"ffa","teams":[["a"],["b"],[]]}`,
		"a player twice":          `{"mode":"3x2","teams":[["a"],["a"],[]],"team_size":2}`,
	} {
		if got, err := DecodeRoom(v); err == nil {
			t.Errorf("%s: accepted as %+v", name, got)
		}
	}
}

// TestRoomCheck: Check is the rule DecodeRoom reads a room with, and the
// allocator builds one with: the room it accepts has SeatsPerTeam seats
// on each team, TeamSize or, without it, team 0's players.
func TestRoomCheck(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		r     Room
		seats int
	}{
		"2v2":           {Room{Teams: [][]string{{"a", "b"}, {"c", "d"}}}, 2},
		"ffa of 3":      {Room{Teams: [][]string{{"a"}, {"b"}, {"c"}}}, 1},
		"3x2 early":     {Room{Teams: [][]string{{"a", "b"}, {"c"}, {}}, TeamSize: 2}, 2},
		"ffa of 4 of 3": {Room{Teams: [][]string{{"a"}, {"b"}, {"c"}, nil}, TeamSize: 1}, 1},
	} {
		if err := c.r.Check(); err != nil || c.r.SeatsPerTeam() != c.seats {
			t.Errorf("%s: %v, %d seats a team, want %d", name, err, c.r.SeatsPerTeam(), c.seats)
		}
	}
	for name, r := range map[string]Room{
		"uneven teams":           {Teams: [][]string{{"a", "b"}, {"c"}}},
		"a team over its size":   {Teams: [][]string{{"a", "b"}, {"c"}, {}}, TeamSize: 1},
		"players on one team":    {Teams: [][]string{{"a", "b"}, {}, {}}, TeamSize: 2},
		"a player twice":         {Teams: [][]string{{"a"}, {"a"}, {}}, TeamSize: 1},
		"an empty player":        {Teams: [][]string{{"a"}, {""}}},
		"one team":               {Teams: [][]string{{"a", "b"}}},
		"more seats than a room": {Teams: [][]string{{"a"}, {"b"}, {}}, TeamSize: 34},
	} {
		if err := r.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
