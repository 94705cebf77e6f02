package allocator

import (
	"fmt"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// RoomOf is the room a game server opens for m: its mode and its players
// team by team (events.MatchTicket.Team). The Agones backend writes it in
// the room annotation (agones.EncodeRoom) and the join tokens carry each
// player's Seat in it (seats), so both say the same.
//
// A match that starts early (m.Teams, m.TeamSize set) gets a room of
// that shape: m.Teams teams, those no ticket fills empty, and TeamSize
// seats each, the seats no player takes free from the start. Otherwise
// the room is the tickets' teams, as before early starts.
//
// A match with a ticket on a team its room does not have (teams are
// 0..n-1), whose id is too long for its annotation key
// (agones.MaxMatchIDLen), or whose room no game server can seat
// (agones.Room.Check: one size of team, two teams at least, each player
// once, at most play.MaxPlayers seats, players on two teams at least)
// is refused as permanent: the matcher never forms one, and no retry
// changes it. It is refused before a server is allocated, so no room is
// taken for it.
func RoomOf(m events.Match) (agones.Room, error) {
	if len(m.MatchID) > agones.MaxMatchIDLen {
		return agones.Room{}, badRoom(m, "match id of %d characters, at most %d fit an annotation key", len(m.MatchID), agones.MaxMatchIDLen)
	}
	teams, err := roomTeams(m)
	if err != nil {
		return agones.Room{}, err
	}
	room := agones.Room{Mode: m.Mode, Teams: make([][]string, teams), AcceptsBackfill: m.AcceptsBackfill, TeamSize: m.TeamSize}
	for i := range room.Teams {
		room.Teams[i] = []string{} // a team no ticket fills is [] in the annotation
	}
	for _, t := range m.Tickets {
		room.Teams[t.Team] = append(room.Teams[t.Team], t.Players...)
	}
	if err := room.Check(); err != nil {
		return agones.Room{}, badRoom(m, "%v", err)
	}
	return room, nil
}

// roomTeams is how many teams m's room has: m.Teams for a match that
// starts early, else as many as its tickets fill; either way every
// ticket's team is one of them.
func roomTeams(m events.Match) (int, error) {
	if m.Teams == 0 && m.TeamSize == 0 {
		teams := 0
		for _, t := range m.Tickets {
			if t.Team < 0 || t.Team >= play.MaxPlayers {
				return 0, badRoom(m, "ticket %s on team %d", t.TicketID, t.Team)
			}
			teams = max(teams, t.Team+1)
		}
		if teams < 2 {
			return 0, badRoom(m, "%d team(s), want at least 2", teams)
		}
		return teams, nil
	}
	if !play.ValidShape(m.Teams, m.TeamSize) {
		return 0, badRoom(m, "a room of %d teams of %d, want 2 teams or more and at most %d seats", m.Teams, m.TeamSize, play.MaxPlayers)
	}
	if m.Backfill != nil {
		return 0, badRoom(m, "a room's shape on a match that fills room %s", m.Backfill.MatchID)
	}
	for _, t := range m.Tickets {
		if t.Team < 0 || t.Team >= m.Teams {
			return 0, badRoom(m, "ticket %s on team %d of %d", t.TicketID, t.Team, m.Teams)
		}
	}
	return m.Teams, nil
}

func badRoom(m events.Match, format string, args ...any) error {
	return Permanent(fmt.Errorf("%w: match %s cannot be seated: %s", events.ErrInvalid, m.MatchID, fmt.Sprintf(format, args...)))
}

// roomSeat is the seat of every player of room (from RoomOf) with Team
// left out: its teams, the seats of each (agones.Room.SeatsPerTeam) and
// whether it accepts backfill. A player sent to fill a free seat gets it
// too (with no Starts: that room's game has started).
func roomSeat(room agones.Room) jointoken.Seat {
	return jointoken.Seat{Teams: len(room.Teams), TeamSize: room.SeatsPerTeam(), AcceptsBackfill: room.AcceptsBackfill}
}

// seats gives each player of room (from RoomOf) their seat, as their
// join token carries it: a game server without Agones learns the room's
// shape from the tokens of its players. In the room of a match that
// starts early, the seat says how many players the game starts with:
// the room's, fewer than its seats (Starts).
func seats(room agones.Room) map[string]jointoken.Seat {
	shape := roomSeat(room)
	if n := len(room.Players()); n < shape.Teams*shape.TeamSize {
		shape.Starts = n
	}
	out := map[string]jointoken.Seat{}
	for i, t := range room.Teams {
		for _, p := range t {
			seat := shape
			seat.Team = i
			out[p] = seat
		}
	}
	return out
}
