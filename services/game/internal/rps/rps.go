// Package rps is the rock-paper-scissors game of one room, as a pure state
// machine: no I/O, no clocks, no goroutines. The room goroutine feeds it
// moves and sends what it returns.
package rps

import (
	"errors"
	"fmt"
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
	// Winner is a player id, or "" for a draw.
	Winner string `json:"winner"`
}

// Game is best-of-N between two players.
type Game struct {
	players [2]string
	bestOf  int
	wins    map[string]int
	moves   map[string]Move
	rounds  []Round
	winner  string
	over    bool
}

// New starts a game; bestOf is odd (1, 3, 5...).
func New(a, b string, bestOf int) *Game {
	if bestOf < 1 {
		bestOf = 1
	}
	return &Game{players: [2]string{a, b}, bestOf: bestOf, wins: map[string]int{}, moves: map[string]Move{}}
}

// Play records a move. When both players have moved, the round is decided
// and returned.
func (g *Game) Play(player string, m Move) (*Round, error) {
	if g.over {
		return nil, ErrGameOver
	}
	if player != g.players[0] && player != g.players[1] {
		return nil, ErrNotPlayer
	}
	if _, ok := g.moves[player]; ok {
		return nil, ErrAlreadyMade
	}
	g.moves[player] = m
	if len(g.moves) < 2 {
		return nil, nil
	}
	a, b := g.players[0], g.players[1]
	r := Round{Number: len(g.rounds) + 1, Moves: g.moves}
	switch {
	case g.moves[a].beats(g.moves[b]):
		r.Winner = a
	case g.moves[b].beats(g.moves[a]):
		r.Winner = b
	}
	if r.Winner != "" {
		g.wins[r.Winner]++
		if g.wins[r.Winner] > g.bestOf/2 {
			g.winner, g.over = r.Winner, true
		}
	}
	g.rounds = append(g.rounds, r)
	g.moves = map[string]Move{}
	return &r, nil
}

// Waiting returns the players who have not moved in the current round.
func (g *Game) Waiting() []string {
	var out []string
	for _, p := range g.players {
		if _, moved := g.moves[p]; !moved {
			out = append(out, p)
		}
	}
	return out
}

// Forfeit ends the game in favour of the other player.
func (g *Game) Forfeit(player string) {
	if g.over {
		return
	}
	g.over = true
	if player == g.players[0] {
		g.winner = g.players[1]
	} else {
		g.winner = g.players[0]
	}
}

// Over reports whether the game has ended, and who won.
func (g *Game) Over() (bool, string) { return g.over, g.winner }

// Score returns the wins of each player.
func (g *Game) Score() map[string]int {
	out := map[string]int{g.players[0]: g.wins[g.players[0]], g.players[1]: g.wins[g.players[1]]}
	return out
}
