package pool

import "time"

// Exact packing. In a mode of teams of two or more, MatchAround that
// cannot form a full match by its scan (which places each candidate on
// the team with most room and never takes one back) packs the candidates
// it met exactly, and forms the full match that makes, if any. Starting
// early (rules.Mode.StartEarly): once a match's anchor has waited After,
// it forms the largest match of whole teams it can, at least MinTeams of
// them. Teams must be whole (TeamSize players each: the room's other
// teams start empty, with free seats) and a party stays on one team, so
// the tickets are packed exactly: MatchAround's scan also hands each
// candidate to a packing, which keeps them by party size, and pack
// fills the anchor's team and then one team after another.
//
// Cost: a mode of teams of one pays one comparison per MatchAround. Any
// other pays for the candidates it keeps (at most as many of each party
// size as a full match can hold) and a packing of at most play.MaxPlayers
// players, on every try that forms no full match: a thin queue's sweep,
// where the pool is small.
//
// The packing is greedy, team by team, largest parties first where
// parties of several sizes fill a team: it can miss the most teams in some
// mixes of parties (a team of 4 filled 3+1 when 2+2 and 3+1 were both
// wanted), and then forms no match, or starts with fewer teams. Among
// parties of one size the ones nearest the anchor in skill, by the scan's
// order, go first.

// packing gathers the candidates of a match packed exactly (a full one
// the scan missed, or one that starts early).
type packing struct {
	anchor *Entry
	teams  int // the mode's
	size   int // TeamSize
	// bySize[n] are the candidates that are parties of n, in the scan's
	// order; used[n] how many of them pack has placed.
	bySize [][]*Entry
	used   []int
	kept   []*Entry // the anchor and every candidate kept: a player once
}

// packing returns the picker for a match around anchor at now, and the
// fewest teams it may start with: the mode's MinTeams once the anchor has
// waited After; else all of them, when parties can make the greedy scan
// miss a full match (teams of two or more: a 4v4 whose first candidate is
// a party of 3 fills 3+2 and finds no 1, where four parties of 2 made
// 2+2 against 2+2); else nil.
func (p *Pool) packing(anchor *Entry, now time.Time) (*packing, int) {
	se := p.mode.StartEarly
	minTeams := p.mode.Teams
	switch {
	case se != nil && anchor.Waited(now) >= time.Duration(se.After):
		minTeams = se.MinTeams
	case p.mode.TeamSize == 1:
		return nil, 0
	}
	return &packing{anchor: anchor, teams: p.mode.Teams, size: p.mode.TeamSize,
		bySize: make([][]*Entry, p.mode.TeamSize+1), used: make([]int, p.mode.TeamSize+1), kept: []*Entry{anchor}}, minTeams
}

// offer keeps e, a candidate that fits the anchor, unless its party fits
// no team, a full match could not place more parties of its size, or it
// has a player of a ticket kept.
func (k *packing) offer(e *Entry) {
	n := len(e.Players)
	if n > k.size || len(k.bySize[n]) >= k.teams*(k.size/n) || sharesPlayer(k.kept, e) {
		return
	}
	k.bySize[n] = append(k.bySize[n], e)
	k.kept = append(k.kept, e)
}

// pack is the largest match of whole teams the kept candidates make with
// the anchor, up to the mode's teams, by team; nil when it has fewer than
// minTeams. The anchor is on team 0.
func (k *packing) pack(minTeams int) [][]*Entry {
	first, ok := k.fill(k.size-len(k.anchor.Players), []*Entry{k.anchor})
	if !ok {
		return nil
	}
	teams := [][]*Entry{first}
	for len(teams) < k.teams {
		team, ok := k.fill(k.size, nil)
		if !ok {
			break // the next team has no more to choose from
		}
		teams = append(teams, team)
	}
	if len(teams) < minTeams {
		return nil
	}
	return teams
}

// fill appends to team parties not yet placed whose players sum to
// exactly r, the largest parties first where there is a choice, and marks
// them placed; false, and nothing placed, when no such parties are left.
func (k *packing) fill(r int, team []*Entry) ([]*Entry, bool) {
	// reach[n][x]: parties of sizes 1..n left sum to x.
	reach := make([][]bool, k.size+1)
	reach[0] = make([]bool, r+1)
	reach[0][0] = true
	for n := 1; n <= k.size; n++ {
		reach[n] = make([]bool, r+1)
		left := len(k.bySize[n]) - k.used[n]
		for x := 0; x <= r; x++ {
			for j := 0; j <= left && j*n <= x && !reach[n][x]; j++ {
				reach[n][x] = reach[n-1][x-j*n]
			}
		}
	}
	if !reach[k.size][r] {
		return team, false
	}
	for n, x := k.size, r; n >= 1; n-- {
		j := min(len(k.bySize[n])-k.used[n], x/n)
		for !reach[n-1][x-j*n] {
			j--
		}
		team = append(team, k.bySize[n][k.used[n]:k.used[n]+j]...)
		k.used[n] += j
		x -= j * n
	}
	return team, true
}

// openPacked forms the match k packs, of minTeams teams or more, if any:
// its tickets leave the pool, split into teams by the mode's balance
// objective over the teams that play. A packing of every team is a full
// match (the greedy scan can miss one that exact packing finds).
func (p *Pool) openPacked(k *packing, minTeams int) [][]*Entry {
	packed := k.pack(minTeams)
	if packed == nil {
		return nil
	}
	var chosen []*Entry
	for _, team := range packed {
		chosen = append(chosen, team...)
	}
	teams := p.assign(chosen, len(packed), packed)
	for _, c := range chosen {
		p.unlink(c)
	}
	return teams
}
