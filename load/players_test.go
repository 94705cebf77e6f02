package main

import "testing"

// TestCast: -players N hands out N players, each again only once given
// back (their ticket has its outcome), and a new player beyond them when
// all N are waiting; -players 0 makes every arrival a new player.
func TestCast(t *testing.T) {
	c := newCast(2)
	if a, b, extra := c.take(), c.take(), c.take(); a != 0 || b != 1 || extra != 2 {
		t.Fatalf("takes %d %d %d, want 0 1 2 (2 is new: both waiting)", a, b, extra)
	}
	c.give(2) // beyond the cast: not handed out again
	c.give(1)
	if p := c.take(); p != 1 {
		t.Fatalf("take after giving 1 back: %d, want 1", p)
	}
	if p := c.take(); p != 3 {
		t.Fatalf("take with none free: %d, want 3", p)
	}
	if n := c.returning.Load(); n != 1 {
		t.Fatalf("returning %d, want 1", n)
	}
	none := newCast(0)
	for i := range 3 {
		if p := none.take(); p != i {
			t.Fatalf("-players 0: arrival %d is player %d", i, p)
		}
		none.give(i)
	}
	if n := none.returning.Load(); n != 0 {
		t.Fatalf("-players 0: returning %d", n)
	}
}
