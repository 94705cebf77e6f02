package rps

import (
	"errors"
	"fmt"
	"slices"
)

// Backfill: a room whose mode accepts backfill loses a player for good
// (Leave) without the game ending while the rules let it go on, and seats
// a new player in the freed seat (Join):
//
//   - A game goes on while every team keeps a player (a free-for-all:
//     while two players are left): a 2v2 that loses one plays 2v1 until
//     the new player arrives. A leave that would empty a team (or leave
//     a free-for-all player alone) is a forfeit, as without backfill.
//   - The leaver's throw of the round in progress is void; if every
//     player left has thrown, the round is decided then. A team keeps
//     the rounds it took; a free-for-all player's points leave with them.
//   - A new player throws from the round in progress: throws are secret
//     until the round is decided, so arriving late gives nothing away,
//     and the round simply waits for one more throw. They take their
//     team's score (the rounds it took); in a free-for-all they start at
//     0 points and play the rounds left.

// Errors Join refuses a player with.
var (
	ErrSeated = errors.New("already a player of this game")
	ErrNoSeat = errors.New("no free seat on that team")
)

// Leave takes player out of the game for good. While the game can go on
// without them it does, and the round their leaving completes is
// returned; otherwise the leave is a forfeit (Forfeit) and the game is
// over (Over).
func (g *Game) Leave(player string) (*Round, error) {
	if g.over {
		return nil, ErrGameOver
	}
	t, ok := g.teamOf[player]
	if !ok {
		return nil, ErrNotPlayer
	}
	if !g.goesOnWithout(t) {
		g.end([]string{player})
		return nil, nil
	}
	g.teams[t] = slices.DeleteFunc(g.teams[t], func(p string) bool { return p == player })
	delete(g.teamOf, player)
	delete(g.moves, player)
	delete(g.points, player)
	if len(g.moves) > 0 && len(g.moves) == len(g.teamOf) {
		return g.decide(), nil
	}
	return nil, nil
}

// goesOnWithout says whether the game can go on once a player of team t
// leaves: every team keeps a player, or in a free-for-all two are left.
func (g *Game) goesOnWithout(t int) bool {
	if g.ffa {
		return len(g.teamOf) > 2
	}
	return len(g.teams[t]) > 1
}

// Join seats player on team (0-based) of a game under way. The room
// decides whether the team has a free seat; the game refuses only a
// player already in it, a team it does not have, and in a free-for-all
// a team of one that is not free.
func (g *Game) Join(player string, team int) error {
	switch {
	case g.over:
		return ErrGameOver
	case team < 0 || team >= len(g.teams):
		return fmt.Errorf("%w: team %d of %d", ErrNoSeat, team+1, len(g.teams))
	case g.ffa && len(g.teams[team]) > 0:
		return fmt.Errorf("%w: team %d of a free-for-all is taken", ErrNoSeat, team+1)
	}
	if _, ok := g.teamOf[player]; ok {
		return ErrSeated
	}
	g.teams[team] = append(g.teams[team], player)
	g.teamOf[player] = team
	return nil
}

// Teams are the players by team now: a team a free-for-all player left
// is empty until Join fills it.
func (g *Game) Teams() [][]string {
	out := make([][]string, len(g.teams))
	for i, t := range g.teams {
		out[i] = slices.Clone(t)
	}
	return out
}

// FreeForAll says whether the game is a free-for-all: fixed when it
// starts, while its teams may later show a seat a player left.
func (g *Game) FreeForAll() bool { return g.ffa }
