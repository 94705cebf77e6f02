package rps

import (
	"errors"
	"maps"
	"slices"
	"testing"
)

var oneVsOne = [][]string{{"a"}, {"b"}}

func TestBestOfThree(t *testing.T) {
	t.Parallel()
	g := New(oneVsOne, 1, 3)
	steps := []struct {
		player string
		move   Move
		winner string
		round  bool
	}{
		{"a", Rock, "", false}, {"b", Scissors, "a", true},
		{"a", Paper, "", false}, {"b", Paper, "", true},
		{"b", Rock, "", false}, {"a", Paper, "a", true},
	}
	for i, s := range steps {
		r, err := g.Play(s.player, s.move)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if (r != nil) != s.round || r != nil && r.Winner != s.winner {
			t.Fatalf("step %d: round %+v", i, r)
		}
	}
	if over, w := g.Over(); !over || !slices.Equal(w, []string{"a"}) {
		t.Fatalf("over=%v winners=%q", over, w)
	}
	if s := g.Score(); s["a"] != 2 || s["b"] != 0 {
		t.Fatalf("score %v", s)
	}
	if _, err := g.Play("a", Rock); !errors.Is(err, ErrGameOver) {
		t.Fatalf("move after the end: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	g := New(oneVsOne, 1, 1)
	if _, err := g.Play("c", Rock); !errors.Is(err, ErrNotPlayer) {
		t.Fatal(err)
	}
	_, _ = g.Play("a", Rock)
	if _, err := g.Play("a", Paper); !errors.Is(err, ErrAlreadyMade) {
		t.Fatal(err)
	}
	if _, err := ParseMove("lizard"); err == nil {
		t.Fatal("lizard accepted")
	}
	g.Forfeit("nobody") // not a player: the game goes on
	if over, _ := g.Over(); over {
		t.Fatal("a stranger's forfeit ended the game")
	}
	g.Forfeit("b")
	if over, w := g.Over(); !over || !slices.Equal(w, []string{"a"}) {
		t.Fatalf("forfeit: %v %q", over, w)
	}
}

// play plays one round: every player's move, in the order of the map's
// keys sorted; the last move decides it.
func play(t *testing.T, g *Game, moves map[string]Move) *Round {
	t.Helper()
	var r *Round
	for i, p := range slices.Sorted(maps.Keys(moves)) {
		var err error
		if r, err = g.Play(p, moves[p]); err != nil {
			t.Fatalf("%s plays: %v", p, err)
		}
		if (r != nil) != (i == len(moves)-1) {
			t.Fatalf("%s's move: round %+v before every player moved", p, r)
		}
	}
	return r
}

// Team modes: each pair of players on different teams is a duel; the
// team with more duel wins takes the round; first to a majority of
// best-of rounds wins the game.
func TestTeams(t *testing.T) {
	t.Parallel()
	g := New([][]string{{"a1", "a2"}, {"b1", "b2"}}, 2, 3)
	if g.FreeForAll() || FreeForAll(2, 2) {
		t.Fatal("2v2 taken for a free-for-all")
	}
	// a1 rock beats b1 and b2 (scissors, scissors); a2 paper loses to
	// both: team a 2 duels, team b 2 duels: a draw.
	r := play(t, g, map[string]Move{"a1": Rock, "a2": Paper, "b1": Scissors, "b2": Scissors})
	if len(r.Winners) != 0 || r.Winner != "" || r.Points["a1"] != 2 || r.Points["b1"] != 1 || r.Points["b2"] != 1 || r.Points["a2"] != 0 {
		t.Fatalf("draw round %+v", r)
	}
	// a1, a2 rock; b1 scissors, b2 rock: team a 2 duels (both beat b1),
	// team b 0: team a takes it.
	r = play(t, g, map[string]Move{"a1": Rock, "a2": Rock, "b1": Scissors, "b2": Rock})
	if !slices.Equal(r.Winners, []string{"a1", "a2"}) || r.Winner != "" {
		t.Fatalf("round %+v", r)
	}
	if s := g.Score(); s["a1"] != 1 || s["a2"] != 1 || s["b1"] != 0 {
		t.Fatalf("score %v: a team's players share its rounds", s)
	}
	// Teammates never duel: all four rock is a draw, not a win.
	if r = play(t, g, map[string]Move{"a1": Rock, "a2": Rock, "b1": Rock, "b2": Rock}); len(r.Winners) != 0 {
		t.Fatalf("round %+v", r)
	}
	if over, _ := g.Over(); over {
		t.Fatal("over after one round taken of a best of 3")
	}
	play(t, g, map[string]Move{"a1": Scissors, "a2": Paper, "b1": Paper, "b2": Paper})
	if over, w := g.Over(); !over || !slices.Equal(w, []string{"a1", "a2"}) {
		t.Fatalf("over=%v winners=%v", over, w)
	}
}

// Three teams of two: the team with the most duel wins takes the round.
func TestThreeTeams(t *testing.T) {
	t.Parallel()
	g := New([][]string{{"a1", "a2"}, {"b1", "b2"}, {"c1", "c2"}}, 2, 1)
	// a: rock rock beat c's scissors (4 duels); b: paper paper beat a's
	// rocks (4 duels); c: scissors scissors beat b's papers (4): a draw.
	r := play(t, g, map[string]Move{"a1": Rock, "a2": Rock, "b1": Paper, "b2": Paper, "c1": Scissors, "c2": Scissors})
	if len(r.Winners) != 0 {
		t.Fatalf("round %+v", r)
	}
	// a rock rock, b scissors scissors, c scissors rock: a 6, c 2, b 0.
	r = play(t, g, map[string]Move{"a1": Rock, "a2": Rock, "b1": Scissors, "b2": Scissors, "c1": Scissors, "c2": Rock})
	if !slices.Equal(r.Winners, []string{"a1", "a2"}) {
		t.Fatalf("round %+v", r)
	}
	if over, w := g.Over(); !over || !slices.Equal(w, []string{"a1", "a2"}) {
		t.Fatalf("over=%v winners=%v", over, w)
	}
}

// Free-for-all: a point per opponent beaten each round, exactly best-of
// rounds, highest total wins, tied leaders share.
func TestFreeForAll(t *testing.T) {
	t.Parallel()
	teams := [][]string{{"x"}, {"y"}, {"z"}}
	if !FreeForAll(3, 1) || FreeForAll(2, 1) || FreeForAll(3, 2) {
		t.Fatal("FreeForAll")
	}
	g := New(teams, 1, 3)
	r := play(t, g, map[string]Move{"x": Rock, "y": Scissors, "z": Scissors}) // x 2
	if r.Points["x"] != 2 || r.Points["y"] != 0 || len(r.Winners) != 0 || r.Winner != "" {
		t.Fatalf("round %+v", r)
	}
	play(t, g, map[string]Move{"x": Rock, "y": Rock, "z": Rock})          // nobody
	r = play(t, g, map[string]Move{"x": Scissors, "y": Rock, "z": Paper}) // each beats one
	if s := g.Score(); s["x"] != 3 || s["y"] != 1 || s["z"] != 1 {
		t.Fatalf("score %v", s)
	}
	if over, w := g.Over(); !over || !slices.Equal(w, []string{"x"}) || r.Number != 3 {
		t.Fatalf("over=%v winners=%v after round %d", over, w, r.Number)
	}

	tie := New(teams, 1, 1)
	play(t, tie, map[string]Move{"x": Rock, "y": Paper, "z": Scissors})
	if over, w := tie.Over(); !over || !slices.Equal(w, []string{"x", "y", "z"}) {
		t.Fatalf("a three-way tie: over=%v winners=%v", over, w)
	}
}

// A forfeit ends the game: the forfeiting players' teams lose; the
// leaders among the others win.
func TestForfeit(t *testing.T) {
	t.Parallel()
	g := New([][]string{{"a1", "a2"}, {"b1", "b2"}}, 2, 5)
	play(t, g, map[string]Move{"a1": Paper, "a2": Paper, "b1": Rock, "b2": Rock}) // a takes it
	_, _ = g.Play("b1", Rock)
	if w := g.Waiting(); !slices.Equal(w, []string{"a1", "a2", "b2"}) {
		t.Fatalf("waiting %v", w)
	}
	g.Forfeit("a2")
	if over, w := g.Over(); !over || !slices.Equal(w, []string{"b1", "b2"}) {
		t.Fatalf("over=%v winners=%v: the team ahead forfeited", over, w)
	}

	ffa := New([][]string{{"x"}, {"y"}, {"z"}, {"w"}}, 1, 3)
	play(t, ffa, map[string]Move{"x": Rock, "y": Scissors, "z": Scissors, "w": Paper}) // x 2, y 1, z 1, w 1
	ffa.Forfeit("x", "w")
	if over, w := ffa.Over(); !over || !slices.Equal(w, []string{"y", "z"}) {
		t.Fatalf("over=%v winners=%v", over, w)
	}
	all := New(oneVsOne, 1, 3)
	all.Forfeit("a", "b")
	if over, w := all.Over(); !over || len(w) != 0 {
		t.Fatalf("everyone forfeited: over=%v winners=%v", over, w)
	}
}
