package pool

import "time"

// Fill picks waiting tickets for the free seats of a running room (a
// backfill request): seats[i] is how many players team i of the room
// still seats. anchor stands for the room (its mean skill, its first
// ticket's attributes compiled for the pool's mode, and the request's
// creation as its wait): every ticket taken fits it (candidates, by fits,
// the one judge of the mode's rules), as every ticket of a match fits
// that match's anchor. anchor.Players are the room's (events.Backfill
// Players): no ticket with one of them is taken, as no player is taken
// twice. A party sits on one team; a ticket at or past the mode's max
// wait is left to expire.
//
// Tickets are taken nearest in skill first, each to the team with the
// most free seats its party fits, until every seat is taken or no more
// fit. A partial fill is returned as it is: the room asks again for what
// is left. The tickets are removed from the pool and returned by the
// room's team (len(seats) teams, some perhaps empty); nil when none fits,
// and then nothing changes.
func (p *Pool) Fill(anchor *Entry, seats []int, now time.Time) [][]*Entry {
	room := append([]int(nil), seats...)
	free := 0
	for _, s := range room {
		free += max(s, 0)
	}
	if free == 0 {
		return nil
	}
	maxWait := time.Duration(p.mode.MaxWait)
	teams := make([][]*Entry, len(room))
	// The room's players stand first among those chosen, so that
	// sharesPlayer passes their tickets over: a room that let a player
	// go, or one who is in it or on the way, is no seat for them.
	chosen := []*Entry{anchor}
	for e := range p.candidates(anchor, now) {
		if e.Waited(now) >= maxWait {
			continue
		}
		t := teamWithRoom(room, len(e.Players))
		if t < 0 || sharesPlayer(chosen, e) {
			continue
		}
		room[t] -= len(e.Players)
		free -= len(e.Players)
		teams[t] = append(teams[t], e)
		chosen = append(chosen, e)
		if free == 0 {
			break
		}
	}
	chosen = chosen[1:]
	if len(chosen) == 0 {
		return nil
	}
	for _, e := range chosen {
		p.unlink(e)
	}
	return teams
}
