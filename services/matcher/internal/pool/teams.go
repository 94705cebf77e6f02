package pool

import (
	"cmp"
	"slices"

	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// teamWithRoom is the team with the most room that fits n players, or -1.
func teamWithRoom(room []int, n int) int {
	best := -1
	for i, r := range room {
		if r >= n && (best < 0 || r > room[best]) {
			best = i
		}
	}
	return best
}

// assign splits the chosen tickets into n teams by the mode's balance
// objective. The chosen set is known to pack: packing is its teams, or
// nil for MatchAround's own (each ticket in the team with the most room,
// in the order chosen, over all the mode's teams); when the objective's
// order cannot pack it, that packing is kept.
func (p *Pool) assign(chosen []*Entry, n int, packing [][]*Entry) [][]*Entry {
	var teams [][]*Entry
	if p.mode.Balance == rules.BalanceNone {
		teams = p.arrivalOrder(chosen, n)
	} else {
		teams = p.balanced(chosen, n)
	}
	switch {
	case teams != nil:
		return teams
	case packing != nil:
		return packing
	}
	return p.packed(chosen)
}

// balanced evens the teams' summed skill: parties largest first, each to
// the team with the most room and, among those, the lowest skill so far;
// nil when that order does not pack.
func (p *Pool) balanced(chosen []*Entry, n int) [][]*Entry {
	order := slices.Clone(chosen)
	slices.SortStableFunc(order, func(a, b *Entry) int {
		if c := cmp.Compare(len(b.Players), len(a.Players)); c != 0 {
			return c
		}
		return cmp.Compare(b.Skill, a.Skill)
	})
	teams, room := p.emptyTeams(n)
	sum := make([]int, n)
	for _, e := range order {
		best := -1
		for i := range teams {
			if room[i] < len(e.Players) {
				continue
			}
			if best < 0 || room[i] > room[best] || room[i] == room[best] && sum[i] < sum[best] {
				best = i
			}
		}
		if best < 0 {
			return nil
		}
		teams[best] = append(teams[best], e)
		room[best] -= len(e.Players)
		sum[best] += e.Skill * len(e.Players)
	}
	return teams
}

// arrivalOrder fills the teams first-fit in the order the tickets were
// created (rules.BalanceNone): the longest-waiting tickets fill the first
// team, and a party goes to the first team with room for it; nil when that
// order does not pack.
func (p *Pool) arrivalOrder(chosen []*Entry, n int) [][]*Entry {
	order := slices.Clone(chosen)
	slices.SortStableFunc(order, func(a, b *Entry) int { return cmp.Compare(a.Created, b.Created) })
	teams, room := p.emptyTeams(n)
	for _, e := range order {
		t := slices.IndexFunc(room, func(r int) bool { return r >= len(e.Players) })
		if t < 0 {
			return nil
		}
		teams[t] = append(teams[t], e)
		room[t] -= len(e.Players)
	}
	return teams
}

// packed is MatchAround's own packing of the chosen tickets.
func (p *Pool) packed(chosen []*Entry) [][]*Entry {
	teams, room := p.emptyTeams(p.mode.Teams)
	for _, e := range chosen {
		t := teamWithRoom(room, len(e.Players))
		teams[t] = append(teams[t], e)
		room[t] -= len(e.Players)
	}
	return teams
}

// emptyTeams are n teams and the room each has: TeamSize.
func (p *Pool) emptyTeams(n int) ([][]*Entry, []int) {
	teams := make([][]*Entry, n)
	room := make([]int, n)
	for i := range room {
		room[i] = p.mode.TeamSize
	}
	return teams, room
}
