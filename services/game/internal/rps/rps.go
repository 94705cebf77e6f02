// Package rps is the rock-paper-scissors game of one room, as a pure state
// machine: no I/O, no clocks, no goroutines. The room goroutine feeds it
// moves and sends what it returns.
//
// The rules, for any number of teams (README "Game rules" states them for
// players): every player throws each round; each pair of players on
// different teams is a duel, and a player's points in a round are the
// duels they won.
//   - Team modes (1v1, 2v2, 5v5: every mode but a free-for-all): the team
//     whose players won the most duels takes the round; a tie for the
//     most is a draw. The first team to take a majority of BestOf rounds
//     wins; draws do not count, so a game may run past BestOf rounds.
//   - Free-for-all (more than two teams of one seat each, a seat maybe
//     free): exactly BestOf rounds are played; each player
//     adds their points of every round; the highest total wins, and
//     players tied for it share the win.
//
// A forfeit ends the game at once: the forfeiting players' teams lose,
// and among the other teams the one that took the most rounds
// (free-for-all: the players with the most points) wins, tied leaders
// sharing the win.
//
// A room that accepts backfill takes a player out instead (Leave) while
// the game can go on without them, and seats a new one (Join): see
// backfill.go.
package rps

import (
	"errors"
	"fmt"
	"slices"
)

// Move is a player's choice.
type Move string

// The moves.
const (
	Rock     Move = "rock"
	Paper    Move = "paper"
	Scissors Move = "scissors"
)

// ParseMove accepts exactly the three moves.
func ParseMove(s string) (Move, error) {
	switch m := Move(s); m {
	case Rock, Paper, Scissors:
		return m, nil
	}
	return "", fmt.Errorf("unknown move %q: want rock, paper or scissors", s)
}

func (m Move) beats(o Move) bool {
	return m == Rock && o == Scissors || m == Paper && o == Rock || m == Scissors && o == Paper
}

// Errors a move can be refused with.
var (
	ErrNotPlayer   = errors.New("not a player of this game")
	ErrAlreadyMade = errors.New("move already made this round")
	ErrGameOver    = errors.New("game is over")
)

// Round is the outcome of one round.
type Round struct {
	Number int             `json:"number"`
	Moves  map[string]Move `json:"moves"`
	// Points are the duels each player won this round.
	Points map[string]int `json:"points"`
	// Winners are the players of the team that took the round; none for
	// a draw, and none in a free-for-all, where only points count.
	Winners []string `json:"winners"`
	// Winner is the one player who took the round (a team of one, as in
	// 1v1), or "": the field 1v1 clients read.
	Winner string `json:"winner"`
}

// Game is one room's game: best-of-N between teams.
type Game struct {
	teams  [][]string
	teamOf map[string]int
	ffa    bool
	bestOf int
	// taken counts the rounds each team took (team modes); points the
	// points of each player (free-for-all).
	taken   []int
	points  map[string]int
	moves   map[string]Move
	rounds  int
	winners []string
	over    bool
}

// FreeForAll says whether a room of teams teams of seats seats each
// plays a free-for-all: more than two teams of one seat. The room's
// shape says it, not who sits in it: a free-for-all that starts early
// (or lost a player) has seats nobody holds yet, and a 2v2v2 that
// restarts with one player a team is still played by teams.
func FreeForAll(teams, seats int) bool { return teams > 2 && seats == 1 }

// New starts a game between teams (at least two with a player, no
// player twice: the room checks), each of seats seats (a team of a
// match that starts early may be empty, and a player may join it later,
// as backfill.go's Join); bestOf is odd (1, 3, 5...).
func New(teams [][]string, seats, bestOf int) *Game {
	g := &Game{teamOf: map[string]int{}, ffa: FreeForAll(len(teams), seats), bestOf: max(bestOf, 1),
		taken: make([]int, len(teams)), points: map[string]int{}, moves: map[string]Move{}}
	for i, t := range teams {
		g.teams = append(g.teams, slices.Clone(t))
		for _, p := range t {
			g.teamOf[p] = i
		}
	}
	return g
}

// Play records a move. When every player has moved, the round is decided
// and returned.
func (g *Game) Play(player string, m Move) (*Round, error) {
	if g.over {
		return nil, ErrGameOver
	}
	if _, ok := g.teamOf[player]; !ok {
		return nil, ErrNotPlayer
	}
	if _, ok := g.moves[player]; ok {
		return nil, ErrAlreadyMade
	}
	g.moves[player] = m
	if len(g.moves) < len(g.teamOf) {
		return nil, nil
	}
	return g.decide(), nil
}

// decide decides the round every player has thrown in.
func (g *Game) decide() *Round {
	g.rounds++
	r := Round{Number: g.rounds, Moves: g.moves, Points: g.duels()}
	if g.ffa {
		for p, n := range r.Points {
			g.points[p] += n
		}
		if g.rounds >= g.bestOf {
			g.end(nil)
		}
	} else if t, ok := leader(g.teamPoints(r.Points)); ok {
		r.Winners = slices.Clone(g.teams[t])
		if len(r.Winners) == 1 {
			r.Winner = r.Winners[0]
		}
		if g.taken[t]++; g.taken[t] > g.bestOf/2 {
			g.end(nil)
		}
	}
	g.moves = map[string]Move{}
	return &r
}

// duels gives each player a point per player of another team their move
// beats.
func (g *Game) duels() map[string]int {
	pts := make(map[string]int, len(g.moves))
	for p, m := range g.moves {
		pts[p] = 0
		for q, o := range g.moves {
			if g.teamOf[p] != g.teamOf[q] && m.beats(o) {
				pts[p]++
			}
		}
	}
	return pts
}

func (g *Game) teamPoints(pts map[string]int) []int {
	out := make([]int, len(g.teams))
	for p, n := range pts {
		out[g.teamOf[p]] += n
	}
	return out
}

// leader is the index of the one highest value; false when several share it.
func leader(v []int) (int, bool) {
	best, n := -1, 0
	for i, x := range v {
		switch {
		case best < 0 || x > v[best]:
			best, n = i, 1
		case x == v[best]:
			n++
		}
	}
	return best, n == 1
}

// end ends the game; out are the players who forfeited. The winners are
// the leaders among the teams with nobody out: by rounds taken, or in a
// free-for-all by points; leaders tied share the win.
func (g *Game) end(out []string) {
	g.over = true
	lost := map[int]bool{}
	for _, p := range out {
		lost[g.teamOf[p]] = true
	}
	best := -1
	var winners []string
	for i, t := range g.teams {
		if lost[i] || len(t) == 0 { // a team out, or a free-for-all seat a player left
			continue
		}
		s := g.taken[i]
		if g.ffa {
			s = g.points[t[0]]
		}
		switch {
		case s > best:
			best, winners = s, slices.Clone(t)
		case s == best:
			winners = append(winners, t...)
		}
	}
	g.winners = winners
}

// Waiting returns the players who have not moved in the current round,
// team by team.
func (g *Game) Waiting() []string {
	var out []string
	for _, t := range g.teams {
		for _, p := range t {
			if _, moved := g.moves[p]; !moved {
				out = append(out, p)
			}
		}
	}
	return out
}

// Forfeit ends the game: the teams of players lose, the others are
// ranked as at the end of a game (see the package comment). Players
// not in the game are ignored (none in it: the game goes on); a game
// that is over stays as it ended.
func (g *Game) Forfeit(players ...string) {
	var out []string
	for _, p := range players {
		if _, ok := g.teamOf[p]; ok {
			out = append(out, p)
		}
	}
	if g.over || len(out) == 0 {
		return
	}
	g.end(out)
}

// Over reports whether the game has ended, and who won: a team's
// players, free-for-all leaders tied, or nobody (every team forfeited).
func (g *Game) Over() (bool, []string) { return g.over, slices.Clone(g.winners) }

// Score is each player's score: in team modes the rounds their team took,
// in a free-for-all their points.
func (g *Game) Score() map[string]int {
	out := make(map[string]int, len(g.teamOf))
	for p, t := range g.teamOf {
		if g.ffa {
			out[p] = g.points[p]
		} else {
			out[p] = g.taken[t]
		}
	}
	return out
}
