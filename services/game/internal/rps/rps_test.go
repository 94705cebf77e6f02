package rps

import (
	"errors"
	"testing"
)

func TestBestOfThree(t *testing.T) {
	t.Parallel()
	g := New("a", "b", 3)
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
	if over, w := g.Over(); !over || w != "a" {
		t.Fatalf("over=%v winner=%q", over, w)
	}
	if _, err := g.Play("a", Rock); !errors.Is(err, ErrGameOver) {
		t.Fatalf("move after the end: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	g := New("a", "b", 1)
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
	g.Forfeit("b")
	if over, w := g.Over(); !over || w != "a" {
		t.Fatalf("forfeit: %v %q", over, w)
	}
}
