package server

import (
	"errors"
	"fmt"
	"slices"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
)

// seating is who may sit where in a room. It is fixed when the room
// opens, so that serveWS reads it without asking the room's goroutine.
type seating struct {
	// allocated, for a room Agones allocated here, are its players by
	// team (the room annotation): exactly they are admitted, each on
	// their team.
	allocated [][]string
	// shape, for a room without Agones, is the Seat of the token that
	// opened it, Team left out: every token must carry the same Teams
	// and TeamSize. Zero: a room of two players seated in order of
	// arrival (tokens without a seat, as before seats).
	shape jointoken.Seat
}

// allocatedSeating seats the players of an allocated room.
func allocatedSeating(r agones.Room) seating {
	st := seating{}
	for _, t := range r.Teams {
		st.allocated = append(st.allocated, slices.Clone(t))
	}
	return st
}

// tokenSeating is the seating a first join's seat fixes.
func tokenSeating(s jointoken.Seat) seating {
	s.Team = 0
	return seating{shape: s}
}

// Join refusals a seating gives (403).
var (
	errNotPlayer    = errors.New("not a player of this match")
	errSeatMismatch = errors.New("the join token's seat is not this room's")
)

// teams is how many teams the room has.
func (st seating) teams() int {
	switch {
	case st.allocated != nil:
		return len(st.allocated)
	case st.shape == jointoken.Seat{}:
		return 2
	}
	return st.shape.Teams
}

// capacity is how many players team may seat.
func (st seating) capacity(team int) int {
	switch {
	case st.allocated != nil:
		return len(st.allocated[team])
	case st.shape == jointoken.Seat{}:
		return 1
	}
	return st.shape.TeamSize
}

// seats is how many players the room seats: its game starts when all are.
func (st seating) seats() int {
	n := 0
	for t := range st.teams() {
		n += st.capacity(t)
	}
	return n
}

// players are the allocated players (nil without Agones).
func (st seating) players() []string {
	var ps []string
	for _, t := range st.allocated {
		ps = append(ps, t...)
	}
	return ps
}

// team is the team g's player sits on, or -1 for the first team with a
// free seat (a token without a seat in a room of two), or why g may not
// sit here.
func (st seating) team(g jointoken.Grant) (int, error) {
	if st.allocated != nil {
		for i, t := range st.allocated {
			if !slices.Contains(t, g.PlayerID) {
				continue
			}
			// A token without a seat is fine: the annotation seats it.
			if g.Seat != (jointoken.Seat{}) && g.Seat != (jointoken.Seat{Team: i, Teams: len(st.allocated), TeamSize: len(t)}) {
				return 0, fmt.Errorf("%w: team %d of %d (of %d), the room has team %d of %d (of %d)",
					errSeatMismatch, g.Seat.Team, g.Seat.Teams, g.Seat.TeamSize, i, len(st.allocated), len(t))
			}
			return i, nil
		}
		return 0, errNotPlayer
	}
	if tokenSeating(g.Seat).shape != st.shape {
		return 0, fmt.Errorf("%w: %d teams of %d, the room has %d of %d",
			errSeatMismatch, g.Seat.Teams, g.Seat.TeamSize, st.shape.Teams, st.shape.TeamSize)
	}
	if st.shape == (jointoken.Seat{}) {
		return -1, nil
	}
	return g.Seat.Team, nil
}
