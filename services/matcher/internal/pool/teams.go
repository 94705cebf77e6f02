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

// assign splits the chosen tickets into teams by the mode's balance
// objective. The chosen set is known to pack (MatchAround put each ticket
// in the team with the most room, in the order chosen); when the
// objective's order cannot pack it, that packing is kept.
func (p *Pool) assign(chosen []*Entry) [][]*Entry {
	if p.mode.Balance == rules.BalanceNone {
		return p.arrivalOrder(chosen)
	}
	return p.balanced(chosen)
}

// balanced evens the teams' summed skill: parties largest first, each to
// the team with the most room and, among those, the lowest skill so far.
func (p *Pool) balanced(chosen []*Entry) [][]*Entry {
	m := p.mode
	order := slices.Clone(chosen)
	slices.SortStableFunc(order, func(a, b *Entry) int {
		if c := cmp.Compare(len(b.Players), len(a.Players)); c != 0 {
			return c
		}
		return cmp.Compare(b.Skill, a.Skill)
	})
	teams, room := p.emptyTeams()
	sum := make([]int, m.Teams)
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
			return p.packed(chosen)
		}
		teams[best] = append(teams[best], e)
		room[best] -= len(e.Players)
		sum[best] += e.Skill * len(e.Players)
	}
	return teams
}

// arrivalOrder fills the teams first-fit in the order the tickets were
// created (rules.BalanceNone): the longest-waiting tickets fill the first
// team, and a party goes to the first team with room for it.
func (p *Pool) arrivalOrder(chosen []*Entry) [][]*Entry {
	order := slices.Clone(chosen)
	slices.SortStableFunc(order, func(a, b *Entry) int { return cmp.Compare(a.Created, b.Created) })
	teams, room := p.emptyTeams()
	for _, e := range order {
		t := slices.IndexFunc(room, func(r int) bool { return r >= len(e.Players) })
		if t < 0 {
			return p.packed(chosen)
		}
		teams[t] = append(teams[t], e)
		room[t] -= len(e.Players)
	}
	return teams
}

// packed is MatchAround's own packing of the chosen tickets.
func (p *Pool) packed(chosen []*Entry) [][]*Entry {
	teams, room := p.emptyTeams()
	for _, e := range chosen {
		t := teamWithRoom(room, len(e.Players))
		teams[t] = append(teams[t], e)
		room[t] -= len(e.Players)
	}
	return teams
}

func (p *Pool) emptyTeams() ([][]*Entry, []int) {
	teams := make([][]*Entry, p.mode.Teams)
	room := make([]int, p.mode.Teams)
	for i := range room {
		room[i] = p.mode.TeamSize
	}
	return teams, room
}
