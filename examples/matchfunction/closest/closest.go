// Package closest is the example match function's logic: it proposes
// matches of the closest skills, with balanced teams. It knows nothing of
// NATS; the command next to it serves it with matchfn.Serve.
//
// Strategy: candidates are sorted by skill, and a match is the run of
// the next unused candidates in that order whose players add up to a
// full match, so its skills are as close as the pool allows. A run is
// given up (and its first candidate left to wait) when its skill spread
// is beyond the spread limit at the longest wait among its tickets, when
// two of its tickets share a player, or when its parties cannot be
// packed into teams. Teams are filled largest party first, each into the
// team with the most room and, among those, the lowest skill so far:
// even teams.
package closest

import (
	"cmp"
	"slices"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/matchfn"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// DefaultSpread is the rule set's default skill window
// (rules.DefaultSkill): a match's spread is at most the window at the
// longest wait among its tickets, so every proposal fits a mode of that
// window (the matcher judges each ticket against the longest-waiting one).
var DefaultSpread = rules.DefaultSkill

// Func is the match function whose spread limit is s.
func Func(s rules.Widening) matchfn.Func {
	return func(req matchfn.Request) (matchfn.Reply, error) { return Propose(req, s), nil }
}

// Propose proposes the matches of req's candidates (see the package doc).
func Propose(req matchfn.Request, s rules.Widening) matchfn.Reply {
	m := req.Mode
	need := m.Teams * m.TeamSize
	order := make([]*matchfn.Candidate, 0, len(req.Candidates))
	for i := range req.Candidates {
		if c := &req.Candidates[i]; len(c.Players) <= m.TeamSize {
			order = append(order, c)
		}
	}
	slices.SortStableFunc(order, func(a, b *matchfn.Candidate) int { return cmp.Compare(a.Skill, b.Skill) })
	used := make([]bool, len(order))
	rep := matchfn.Reply{Matches: []matchfn.Proposal{}}
	for i := range order {
		if used[i] {
			continue
		}
		run := runFrom(order, used, i, need, s)
		if run == nil {
			continue
		}
		teams := pack(order, run, m)
		if teams == nil {
			continue
		}
		for _, j := range run {
			used[j] = true
		}
		rep.Matches = append(rep.Matches, matchfn.Proposal{Teams: teams})
	}
	return rep
}

// runFrom is the indexes of the next unused candidates from i on whose
// players make need, or nil if there are not enough within the spread.
func runFrom(order []*matchfn.Candidate, used []bool, i, need int, s rules.Widening) []int {
	players := map[string]bool{}
	run := []int{}
	n := 0
	var longest int64
	for j := i; j < len(order) && n < need; j++ {
		c := order[j]
		if used[j] || n+len(c.Players) > need || slices.ContainsFunc(c.Players, func(p string) bool { return players[p] }) {
			continue // taken, too big for the room left, or a player already in
		}
		longest = max(longest, c.WaitedMS)
		if c.Skill-order[i].Skill > s.At(time.Duration(longest)*time.Millisecond) {
			return nil // sorted: every later one is further away
		}
		for _, p := range c.Players {
			players[p] = true
		}
		run = append(run, j)
		n += len(c.Players)
	}
	if n < need {
		return nil
	}
	return run
}

// pack splits a run into m's teams, or returns nil if its parties do not
// fit them.
func pack(order []*matchfn.Candidate, run []int, m matchfn.Mode) [][]string {
	byParty := slices.Clone(run)
	slices.SortStableFunc(byParty, func(a, b int) int {
		if c := cmp.Compare(len(order[b].Players), len(order[a].Players)); c != 0 {
			return c
		}
		return cmp.Compare(order[b].Skill, order[a].Skill)
	})
	teams := make([][]string, m.Teams)
	room := make([]int, m.Teams)
	sum := make([]int, m.Teams)
	for t := range room {
		room[t] = m.TeamSize
	}
	for _, j := range byParty {
		c := order[j]
		best := -1
		for t := range teams {
			if room[t] < len(c.Players) {
				continue
			}
			if best < 0 || room[t] > room[best] || room[t] == room[best] && sum[t] < sum[best] {
				best = t
			}
		}
		if best < 0 {
			return nil
		}
		teams[best] = append(teams[best], c.TicketID)
		room[best] -= len(c.Players)
		sum[best] += c.Skill * len(c.Players)
	}
	return teams
}
