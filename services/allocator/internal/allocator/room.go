package allocator

import (
	"fmt"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
)

// RoomOf is the room a game server opens for m: its mode and its players
// team by team (events.MatchTicket.Team). The Agones backend writes it in
// the room annotation (agones.EncodeRoom) and the join tokens carry each
// player's Seat in it (seats), so both say the same.
//
// A match whose teams are not 0..n-1, of one size, at least two, with
// each player once and at most agones.MaxRoomPlayers in all, or whose id
// is too long for its annotation key (agones.MaxMatchIDLen), is refused
// as permanent: the matcher never forms one, no game server could seat
// it, and no retry changes it. It is refused before a server is
// allocated, so no room is taken for it.
func RoomOf(m events.Match) (agones.Room, error) {
	if len(m.MatchID) > agones.MaxMatchIDLen {
		return agones.Room{}, badRoom(m, "match id of %d characters, at most %d fit an annotation key", len(m.MatchID), agones.MaxMatchIDLen)
	}
	teams := 0
	for _, t := range m.Tickets {
		if t.Team < 0 || t.Team >= agones.MaxRoomPlayers {
			return agones.Room{}, badRoom(m, "ticket %s on team %d", t.TicketID, t.Team)
		}
		teams = max(teams, t.Team+1)
	}
	if teams < 2 {
		return agones.Room{}, badRoom(m, "%d team(s), want at least 2", teams)
	}
	room := agones.Room{Mode: m.Mode, Teams: make([][]string, teams), Backfill: m.AcceptsBackfill}
	seen := map[string]bool{}
	for _, t := range m.Tickets {
		for _, p := range t.Players {
			if seen[p] {
				return agones.Room{}, badRoom(m, "player %s seated twice", p)
			}
			seen[p] = true
			room.Teams[t.Team] = append(room.Teams[t.Team], p)
		}
	}
	if len(seen) > agones.MaxRoomPlayers {
		return agones.Room{}, badRoom(m, "%d players, at most %d", len(seen), agones.MaxRoomPlayers)
	}
	for i, t := range room.Teams {
		if len(t) != len(room.Teams[0]) {
			return agones.Room{}, badRoom(m, "team %d has %d players, team 0 has %d", i, len(t), len(room.Teams[0]))
		}
	}
	return room, nil
}

func badRoom(m events.Match, format string, args ...any) error {
	return Permanent(fmt.Errorf("%w: match %s cannot be seated: %s", events.ErrInvalid, m.MatchID, fmt.Sprintf(format, args...)))
}

// seats gives each player of room (from RoomOf) their seat, as their
// join token carries it: a game server without Agones learns the room's
// shape from the tokens of its players.
func seats(room agones.Room) map[string]jointoken.Seat {
	out := map[string]jointoken.Seat{}
	for i, t := range room.Teams {
		for _, p := range t {
			out[p] = jointoken.Seat{Team: i, Teams: len(room.Teams), TeamSize: len(t), Backfill: room.Backfill}
		}
	}
	return out
}
