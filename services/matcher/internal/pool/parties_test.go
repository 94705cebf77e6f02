package pool

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// party is a ticket of a party of n at skill 1500, created waited before t0.
func party(id string, n int, waited time.Duration) *Entry {
	var players []string
	for i := range n {
		players = append(players, fmt.Sprintf("%s-%d", id, i))
	}
	return tk(id, 1500, waited, players...)
}

func TestPackable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		teams   int
		size    int
		waiting []int // party sizes besides the anchor
		anchor  int
		want    bool
	}{
		{"5v5 of fours: the anchor's team lacks its one", 2, 5, []int{4, 4, 4, 4}, 4, false},
		// Each sum alone is there, not both: one player for both teams.
		{"5v5 of fours and one alone", 2, 5, []int{4, 4, 1}, 4, false},
		{"5v5 of fours and two alone", 2, 5, []int{4, 4, 1, 1}, 4, true},
		{"one alone among fours: no team of five", 2, 5, []int{4, 4, 4}, 1, false},
		{"4v4 of twos around a two", 2, 4, []int{2, 2, 2}, 2, true},
		{"4v4 of threes", 2, 4, []int{3, 3, 3}, 3, false},
		{"a full team's party", 2, 3, []int{3}, 3, true},
		{"teams of one", 4, 1, nil, 1, true}, // never weighed
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := New(mode(tc.teams, tc.size))
			for i, n := range tc.waiting {
				p.Add(party(fmt.Sprintf("w%d", i), n, time.Second))
			}
			a := party("anchor", tc.anchor, 0)
			p.Add(a)
			if got := p.packable(a); got != tc.want {
				t.Fatalf("packable = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPackableNeverRefusesAMatch: over random pools of parties, whenever
// packable says no, an exact packing of every other ticket (all fitting:
// one skill, no rules) finds no full match either, so no match is missed.
func TestPackableNeverRefusesAMatch(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	refused := 0
	for round := range 3000 {
		size := 2 + rng.IntN(4)
		p := New(mode(2, size))
		var all []*Entry
		for i := range rng.IntN(7) {
			e := party(fmt.Sprintf("r%d-%d", round, i), 1+rng.IntN(size), time.Second)
			p.Add(e)
			all = append(all, e)
		}
		a := party(fmt.Sprintf("r%d-a", round), 1+rng.IntN(size), 0)
		p.Add(a)
		if p.packable(a) {
			continue
		}
		refused++
		k, _ := p.packing(a, t0)
		for _, e := range all {
			k.offer(e)
		}
		if teams := k.pack(2); teams != nil {
			t.Fatalf("round %d: packable refused anchor of %d in teams of %d, but %s packs", round, len(a.Players), size, ids(teams))
		}
	}
	if refused == 0 {
		t.Fatal("no pool was refused: the test checked nothing")
	}
	// Counts follow the pool: taking the other tickets out leaves none.
	p := New(mode(2, 3))
	a := party("a", 1, 0)
	p.Add(a)
	for i := range 5 {
		p.Add(party(fmt.Sprintf("x%d", i), 1, time.Second))
	}
	for i := range 5 {
		p.Remove(fmt.Sprintf("x%d", i))
	}
	if p.packable(a) {
		t.Fatal("packable with every other ticket gone")
	}
}
