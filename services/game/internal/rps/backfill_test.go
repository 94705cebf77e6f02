package rps

import (
	"errors"
	"slices"
	"testing"
)

// A 2v2 that loses a player plays on 2v1: the leaver's throw is void, the
// round their leaving completes is decided then, the team keeps the
// rounds it took, and a new player takes the seat from the round in
// progress with the team's score.
func TestLeaveAndJoinTeams(t *testing.T) {
	t.Parallel()
	g := New([][]string{{"a1", "a2"}, {"b1", "b2"}}, 2, 5)
	play(t, g, map[string]Move{"a1": Paper, "a2": Paper, "b1": Rock, "b2": Rock}) // a takes it
	for _, p := range []string{"a1", "a2", "b1"} {
		if _, err := g.Play(p, Rock); err != nil {
			t.Fatal(err)
		}
	}
	// b2 leaves; every player left has thrown: the round is decided
	// without b2 (all rock: a draw).
	r, err := g.Leave("b2")
	if err != nil || r == nil || r.Number != 2 || len(r.Winners) != 0 {
		t.Fatalf("leave completing a round: %+v, %v", r, err)
	}
	if over, _ := g.Over(); over {
		t.Fatal("2v1 ended the game")
	}
	if s := g.Score(); len(s) != 3 || s["a1"] != 1 || s["b1"] != 0 {
		t.Fatalf("score %v", s)
	}
	// 2v1: b1's scissors beat both papers; team b takes it.
	r = play(t, g, map[string]Move{"a1": Paper, "a2": Paper, "b1": Scissors})
	if !slices.Equal(r.Winners, []string{"b1"}) {
		t.Fatalf("2v1 round %+v", r)
	}
	if _, err := g.Play("a1", Rock); err != nil { // a throw before the new player arrives
		t.Fatal(err)
	}
	if err := g.Join("b3", 1); err != nil {
		t.Fatal(err)
	}
	if s := g.Score(); s["b3"] != 1 {
		t.Fatalf("the new player's score %d, want the team's 1", s["b3"])
	}
	if w := g.Waiting(); !slices.Equal(w, []string{"a2", "b1", "b3"}) {
		t.Fatalf("the round in progress waits for %v, want a2 b1 b3", w)
	}
	if r := play(t, g, map[string]Move{"a2": Rock, "b1": Paper, "b3": Paper}); !slices.Equal(r.Winners, []string{"b1", "b3"}) {
		t.Fatalf("round %+v", r)
	}
	play(t, g, map[string]Move{"a1": Rock, "a2": Rock, "b1": Paper, "b3": Rock})
	if over, w := g.Over(); !over || !slices.Equal(w, []string{"b1", "b3"}) {
		t.Fatalf("over=%v winners=%v", over, w)
	}
	if got := g.Teams(); !slices.Equal(got[1], []string{"b1", "b3"}) {
		t.Fatalf("teams %v", got)
	}
}

// A leave that would empty a team is a forfeit, as without backfill: 1v1,
// or the last player of a 2v2 team.
func TestLeaveThatEmptiesATeamForfeits(t *testing.T) {
	t.Parallel()
	g := New(oneVsOne, 1, 3)
	if r, err := g.Leave("a"); r != nil || err != nil {
		t.Fatalf("Leave = %+v, %v", r, err)
	}
	if over, w := g.Over(); !over || !slices.Equal(w, []string{"b"}) {
		t.Fatalf("1v1: over=%v winners=%v", over, w)
	}
	g = New([][]string{{"a1", "a2"}, {"b1", "b2"}}, 2, 3)
	if _, err := g.Leave("a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Leave("a2"); err != nil {
		t.Fatal(err)
	}
	if over, w := g.Over(); !over || !slices.Equal(w, []string{"b1", "b2"}) {
		t.Fatalf("2v2 emptied: over=%v winners=%v", over, w)
	}
	if _, err := g.Leave("b1"); !errors.Is(err, ErrGameOver) {
		t.Fatalf("leave after the end: %v", err)
	}
	if err := g.Join("c", 0); !errors.Is(err, ErrGameOver) {
		t.Fatalf("join after the end: %v", err)
	}
}

// A free-for-all goes on while two players are left; the leaver's
// points go with them; a new player takes the free seat with 0 points
// and plays the rounds left; the game still lasts best-of rounds.
func TestLeaveAndJoinFreeForAll(t *testing.T) {
	t.Parallel()
	g := New([][]string{{"x"}, {"y"}, {"z"}}, 1, 3)
	play(t, g, map[string]Move{"x": Rock, "y": Scissors, "z": Rock}) // x 1, z 1
	if r, err := g.Leave("z"); r != nil || err != nil {
		t.Fatalf("Leave = %+v, %v", r, err)
	}
	if got := g.Teams(); len(got) != 3 || len(got[2]) != 0 {
		t.Fatalf("teams %v: z's seat is free, the team kept", got)
	}
	if err := g.Join("w", 0); !errors.Is(err, ErrNoSeat) {
		t.Fatalf("a taken seat of a free-for-all: %v", err)
	}
	if err := g.Join("y", 2); !errors.Is(err, ErrSeated) {
		t.Fatalf("a player already in the game: %v", err)
	}
	if err := g.Join("w", 3); !errors.Is(err, ErrNoSeat) {
		t.Fatalf("a team the game does not have: %v", err)
	}
	play(t, g, map[string]Move{"x": Rock, "y": Paper}) // y 1
	if err := g.Join("w", 2); err != nil {
		t.Fatal(err)
	}
	if s := g.Score(); len(s) != 3 || s["w"] != 0 || s["x"] != 1 || s["y"] != 1 {
		t.Fatalf("score %v", s)
	}
	r := play(t, g, map[string]Move{"w": Rock, "x": Scissors, "y": Scissors}) // w 2
	if over, w := g.Over(); !over || r.Number != 3 || !slices.Equal(w, []string{"w"}) {
		t.Fatalf("over=%v winners=%v after round %d", over, w, r.Number)
	}

	// Two left: a leave is a forfeit; the one left wins.
	g = New([][]string{{"x"}, {"y"}, {"z"}}, 1, 3)
	_, _ = g.Leave("z")
	_, _ = g.Leave("y")
	if over, w := g.Over(); !over || !slices.Equal(w, []string{"x"}) {
		t.Fatalf("over=%v winners=%v", over, w)
	}
}

// A seat freed before anyone threw decides nothing; a stranger cannot
// leave.
func TestLeaveRefusals(t *testing.T) {
	t.Parallel()
	g := New([][]string{{"a1", "a2"}, {"b1", "b2"}}, 2, 3)
	if _, err := g.Leave("c"); !errors.Is(err, ErrNotPlayer) {
		t.Fatalf("a stranger leaves: %v", err)
	}
	if r, err := g.Leave("a1"); r != nil || err != nil {
		t.Fatalf("Leave with no throw yet = %+v, %v", r, err)
	}
	if _, err := g.Play("a1", Rock); !errors.Is(err, ErrNotPlayer) {
		t.Fatalf("a player who left throws: %v", err)
	}
}
