package rps

import (
	"slices"
	"testing"
)

// A free-for-all room of four that started early with three players (its
// fourth seat an empty team) plays as a free-for-all: three throws
// decide a round, a player backfilled on the empty seat throws from the
// round in progress with no points, and BestOf rounds end it.
func TestEarlyFreeForAllOfThreeInFour(t *testing.T) {
	t.Parallel()
	g := New([][]string{{"x"}, {"y"}, {"z"}, {}}, 1, 3)
	if !g.FreeForAll() {
		t.Fatal("a free-for-all with a seat free plays as teams")
	}
	// x rock beats y and z (scissors): 2 points.
	if r := play(t, g, map[string]Move{"x": Rock, "y": Scissors, "z": Scissors}); r.Points["x"] != 2 || len(r.Winners) != 0 {
		t.Fatalf("round 1 %+v", r)
	}
	if _, err := g.Play("x", Paper); err != nil {
		t.Fatal(err)
	}
	if err := g.Join("w", 3); err != nil {
		t.Fatalf("w on the free seat: %v", err)
	}
	if err := g.Join("v", 3); err == nil {
		t.Fatal("a second player on w's seat")
	}
	if w := g.Waiting(); !slices.Equal(w, []string{"y", "z", "w"}) {
		t.Fatalf("the round in progress waits for %v", w)
	}
	// x paper beats y, z and w (rock): 3 more.
	play(t, g, map[string]Move{"y": Rock, "z": Rock, "w": Rock})
	// w scissors beats x paper... and y, z paper: 3 points for w.
	r := play(t, g, map[string]Move{"x": Paper, "y": Paper, "z": Paper, "w": Scissors})
	if r.Number != 3 || r.Points["w"] != 3 {
		t.Fatalf("round 3 %+v", r)
	}
	over, winners := g.Over()
	if !over || !slices.Equal(winners, []string{"x"}) {
		t.Fatalf("over=%v winners=%v, want x (5 points)", over, winners)
	}
	if s := g.Score(); s["x"] != 5 || s["w"] != 3 || s["y"] != 0 {
		t.Fatalf("score %v", s)
	}
}

// A free-for-all that started early with two players goes on with two,
// as one that lost a player does: a leave then is a forfeit.
func TestEarlyFreeForAllOfTwo(t *testing.T) {
	t.Parallel()
	g := New([][]string{{"x"}, {"y"}, {}, {}}, 1, 1)
	if !g.FreeForAll() {
		t.Fatal("not a free-for-all")
	}
	if _, err := g.Leave("y"); err != nil {
		t.Fatal(err)
	}
	if over, w := g.Over(); !over || !slices.Equal(w, []string{"x"}) {
		t.Fatalf("over=%v winners=%v", over, w)
	}
}

// A game of three teams of two that started early with two of them: the
// empty team takes no round and never wins; a player backfilled on it
// plays for it.
func TestEarlyTeamsWithAnEmptyTeam(t *testing.T) {
	t.Parallel()
	g := New([][]string{{"a1", "a2"}, {"b1", "b2"}, {}}, 2, 3)
	if g.FreeForAll() {
		t.Fatal("teams of two played as a free-for-all")
	}
	// All throw rock: nobody wins a duel; the empty team ties at 0 too.
	if r := play(t, g, map[string]Move{"a1": Rock, "a2": Rock, "b1": Rock, "b2": Rock}); len(r.Winners) != 0 {
		t.Fatalf("draw %+v", r)
	}
	if r := play(t, g, map[string]Move{"a1": Paper, "a2": Paper, "b1": Rock, "b2": Rock}); !slices.Equal(r.Winners, []string{"a1", "a2"}) {
		t.Fatalf("round 2 %+v", r)
	}
	if err := g.Join("c1", 2); err != nil {
		t.Fatal(err)
	}
	// c1 scissors beats the four papers: team c takes it.
	if r := play(t, g, map[string]Move{"a1": Paper, "a2": Paper, "b1": Paper, "b2": Paper, "c1": Scissors}); !slices.Equal(r.Winners, []string{"c1"}) {
		t.Fatalf("round 3 %+v", r)
	}
	play(t, g, map[string]Move{"a1": Paper, "a2": Paper, "b1": Rock, "b2": Rock, "c1": Rock})
	if over, w := g.Over(); !over || !slices.Equal(w, []string{"a1", "a2"}) {
		t.Fatalf("over=%v winners=%v", over, w)
	}
}

// A 2v2v2 with one player a team (restarted after three players left
// for good) is played by teams: the room's shape, not who sits in it,
// makes a free-for-all.
func TestTeamsOfOnePlayerInTeamsOfTwo(t *testing.T) {
	t.Parallel()
	g := New([][]string{{"a1"}, {"b1"}, {"c1"}}, 2, 3)
	if g.FreeForAll() {
		t.Fatal("a 2v2v2 with one player a team played as a free-for-all")
	}
	if r := play(t, g, map[string]Move{"a1": Rock, "b1": Scissors, "c1": Scissors}); !slices.Equal(r.Winners, []string{"a1"}) {
		t.Fatalf("round %+v", r)
	}
	if err := g.Join("a2", 0); err != nil {
		t.Fatalf("a2 on team a's free seat: %v", err)
	}
}
