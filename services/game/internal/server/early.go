package server

import "fmt"

// A match that starts early (rules.Mode.StartEarly) gets a room with more
// seats than it has players: the room keeps the shape of a full match,
// its game starts with the match's players, and the seats nobody holds
// are free from the start. Under Agones the room annotation names the
// match's players on the room's teams, some short or empty, with
// TeamSize the seats of each (seating.size); without Agones every token
// of the match carries the room's shape and Starts, the players its game
// starts with (seating.shape). A room that accepts backfill asks for the
// free seats as soon as its game starts (room.startAsking), as for a
// seat a player left, and a player sent for one takes it with a backfill
// token of the room's full shape.

// starts is how many seated players the room's game starts with (the
// waiting message's Seats). Without Agones: the Starts of the match's
// tokens, or every seat while none has said one (a room whose match
// fills every seat, or that a backfill token opened: learnStarts).
// Under Agones: the players who hold a seat (the allocation's, less
// those a process before this one let go, and any who took a free seat)
// and the seats held for the players that process backfilled; the seats
// the allocation left empty, or that process asked for, wait for nobody.
func (r *room) starts() int {
	switch {
	case r.seating.allocated != nil:
		n := sum(r.backfill.held)
		for _, t := range r.roster {
			n += len(t)
		}
		return n
	case r.learned > 0:
		return r.learned
	}
	return r.seating.seats()
}

// learnStarts takes the Starts of a token (0: it says none) in a room
// without Agones. The room's first token fixes its shape (serveWS checks
// every other against it), but a backfill token says no Starts, and
// after a restart the player who filled a free seat may be the first
// back: until a token of the match says how many the game starts with,
// the room waits for every seat, and from then on a token that says
// another number is refused.
func (r *room) learnStarts(starts int) (refusal string) {
	switch {
	case starts == 0 || r.seating.allocated != nil:
	case r.learned == 0:
		r.learned = starts
	case starts != r.learned:
		return fmt.Sprintf("join refused: %v: the token's game starts with %d players, this room's with %d",
			errSeatMismatch, starts, r.learned)
	}
	return ""
}

// ready says whether the game can start: the players it starts with are
// seated, and they sit on two teams at least. A restart in place may
// find a team whose players were all let go; its room then waits for
// the players it asks for (backfill.go).
func (r *room) ready() bool {
	teams := r.teams
	if r.seating.allocated != nil {
		teams = r.roster
	}
	playing := 0
	for _, t := range teams {
		if len(t) > 0 {
			playing++
		}
	}
	return len(r.seats) >= r.starts() && playing >= 2
}
