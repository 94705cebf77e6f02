package server

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// seating is who may sit where in a room. It is fixed when the room
// opens, so that serveWS reads it without asking the room's goroutine.
type seating struct {
	// allocated, for a room Agones allocated here, are its players by
	// team (the room annotation): exactly they are admitted, each on
	// their team, besides players sent to fill a free seat (backfill).
	// size is the seats of each team (agones.Room.SeatsPerTeam): in the
	// room of a match that starts early a team may be short or empty.
	allocated [][]string
	size      int
	// shape, for a room without Agones, is the Seat of the token that
	// opened it, Team left out: every token must carry the same Teams,
	// TeamSize and Backfill, and the match's tokens the same Starts. A
	// backfill token carries no Starts, nor does a match token of a full
	// room that accepts backfill, and the two look alike: a room one of
	// them opened learns its Starts from the first token that says one
	// (room.learnStarts). Zero: a room of two players seated in order of
	// arrival (tokens without a seat, as before seats).
	shape jointoken.Seat
	// acceptsBackfill: the room accepts backfill (backfill.go): the room
	// annotation's AcceptsBackfill under Agones, the tokens'
	// Seat.AcceptsBackfill without.
	acceptsBackfill bool
	// gone, for an allocated room a process before this one hosted, are
	// the players that process let go for good (backfill): its kept
	// seats name them, and an allocated player off the players List is
	// one too, so their seats start free. listed are the players the
	// List held then, prior the request that process left ("" read as
	// none). All are read from the GameServer when the room opens
	// (reopened); gone is nil for a room that never asked.
	gone   map[string]bool
	listed map[string]bool
	prior  play.Backfill
	// kept, for a live room a process before this one hosted, are the
	// digests of its seated players' resume keys it kept (resume.go),
	// and keptErr why they could not be read (the room opens without).
	kept    map[string]string
	keptErr error
}

// allocatedSeating seats the players of an allocated room.
func allocatedSeating(r agones.Room) seating {
	st := seating{acceptsBackfill: r.AcceptsBackfill, size: r.SeatsPerTeam()}
	for _, t := range r.Teams {
		st.allocated = append(st.allocated, slices.Clone(t))
	}
	return st
}

// tokenSeating is the seating a first join's seat fixes.
func tokenSeating(s jointoken.Seat) seating {
	s.Team = 0
	return seating{shape: s, acceptsBackfill: s.AcceptsBackfill}
}

// Join refusals a seating gives (403).
var (
	errNotPlayer    = errors.New("not a player of this match")
	errSeatMismatch = errors.New("the join token's seat is not this room's")
	errNoBackfill   = errors.New("this room does not accept backfill: only the match's own players may join")
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

// capacity is how many players each team may seat.
func (st seating) capacity() int {
	switch {
	case st.allocated != nil:
		return st.size
	case st.shape == jointoken.Seat{}:
		return 1
	}
	return st.shape.TeamSize
}

// seats is how many players the room seats.
func (st seating) seats() int { return st.teams() * st.capacity() }

// players are the allocated players (nil without Agones).
func (st seating) players() []string {
	var ps []string
	for _, t := range st.allocated {
		ps = append(ps, t...)
	}
	return ps
}

// roster is who holds a seat when the room opens, by team: the allocated
// players but those gone (none without Agones: seats are taken in order
// of arrival).
func (st seating) roster() [][]string {
	out := noTeams(st.teams())
	for i, t := range st.allocated {
		for _, p := range t {
			if !st.gone[p] {
				out[i] = append(out[i], p)
			}
		}
	}
	return out
}

// team is the team g's player sits on, or -1 for the first team with a
// free seat (a token without a seat in a room of two), or why g may not
// sit here.
func (st seating) team(g jointoken.Grant) (int, error) {
	if st.allocated != nil {
		seat := g.Seat
		// The annotation says whether the room accepts backfill, and
		// names the players its game starts with.
		seat.AcceptsBackfill, seat.Starts = false, 0
		for i, t := range st.allocated {
			if !slices.Contains(t, g.PlayerID) {
				continue
			}
			// A token without a seat is fine: the annotation seats it.
			if seat != (jointoken.Seat{}) && seat != (jointoken.Seat{Team: i, Teams: len(st.allocated), TeamSize: st.size}) {
				return 0, fmt.Errorf("%w: team %d of %d (of %d), the room has team %d of %d (of %d)",
					errSeatMismatch, g.Seat.Team, g.Seat.Teams, g.Seat.TeamSize, i, len(st.allocated), st.size)
			}
			return i, nil
		}
		return st.backfillTeam(g)
	}
	want := tokenSeating(g.Seat).shape
	if want.AcceptsBackfill && (want.Starts == 0 || st.shape.Starts == 0) {
		// Starts is the match's tokens' to say (seating.shape): a token
		// without it fits any room of its shape, and the room learns it
		// from the first token with it (room.learnStarts).
		want.Starts = st.shape.Starts
	}
	if want != st.shape {
		if want.AcceptsBackfill && !st.shape.AcceptsBackfill {
			return 0, errNoBackfill
		}
		return 0, fmt.Errorf("%w: %d teams of %d starting with %d, the room has %d of %d starting with %d (backfill %v, the room %v)",
			errSeatMismatch, g.Seat.Teams, g.Seat.TeamSize, g.Seat.Starts, st.shape.Teams, st.shape.TeamSize, st.shape.Starts, g.Seat.AcceptsBackfill, st.shape.AcceptsBackfill)
	}
	if st.shape == (jointoken.Seat{}) {
		return -1, nil
	}
	return g.Seat.Team, nil
}

// backfillTeam is the team of an allocated room that g, a player the
// allocation did not seat, may take a free seat on: Agones never
// rewrites the room annotation, so a player the allocator sent to fill a
// free seat (a backfill token: Seat.AcceptsBackfill, the room's full shape, its
// seats per team whatever the allocation seated on them) is known by the
// token alone. Whether the team has a free seat is the room's to say
// (room.seat).
func (st seating) backfillTeam(g jointoken.Grant) (int, error) {
	switch {
	case !g.Seat.AcceptsBackfill:
		return 0, errNotPlayer
	case !st.acceptsBackfill:
		return 0, errNoBackfill
	case g.Seat.Teams != len(st.allocated) || g.Seat.TeamSize != st.size:
		return 0, fmt.Errorf("%w: team %d of %d (of %d), the room has %d teams of %d",
			errSeatMismatch, g.Seat.Team, g.Seat.Teams, g.Seat.TeamSize, len(st.allocated), st.size)
	}
	return g.Seat.Team, nil
}

// reopened completes st, the seating of live room matchID, with what a
// process before this one left on gs: the players it let go for good
// and the Ask its request reached. A room that accepts backfill and has
// asked (its backfill annotation exists) or let a player go lost a
// player. Its kept seats name whom it let go: the players List is every
// room's, and a player let go here may be seated by another room since.
// An allocated player missing from the List is gone too: a process
// older than the names left only that. A room that never
// asked is seated from its annotation alone, as before backfill: a List
// that lacks a player for another reason (a list Agones cut at its
// capacity) does not free their seat.
func (st seating) reopened(gs sdk.GameServer, matchID string) seating {
	var letGo map[string]bool
	st.kept, letGo, st.keptErr = keptSeats(gs, matchID)
	v, asked := gs.ObjectMeta.Annotations[agones.BackfillAnnotation(matchID)]
	players, listed := gs.Status.Lists[agones.ListPlayers]
	if !st.acceptsBackfill || !listed || !asked && len(letGo) == 0 {
		return st
	}
	if prior, ok, err := agones.DecodeBackfill(v); ok && err == nil && len(prior.Seats) == len(st.allocated) {
		st.prior = prior
	}
	st.gone, st.listed = map[string]bool{}, map[string]bool{}
	maps.Copy(st.gone, letGo)
	for _, p := range players.Values {
		st.listed[p] = true
	}
	for _, p := range st.players() {
		if !st.listed[p] {
			st.gone[p] = true
		}
	}
	return st
}

// noTeams is n teams without players, each [] on the wire, never null:
// the page walks every team's players, and a room has empty teams while
// it waits, or when its match started early.
func noTeams(n int) [][]string {
	out := make([][]string, n)
	for i := range out {
		out[i] = []string{}
	}
	return out
}
