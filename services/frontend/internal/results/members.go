package results

import (
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// A party's ticket is followed on each of its players' subjects: every
// player is told on its own (the allocator signs each a join token that
// admits that player alone), so each player's waiters get that player's
// results. The first terminal result, whichever player's, is the
// ticket's outcome: it is counted then, and ends its expiries. The
// ticket is let go once no wait on it is left, the players' results
// being published together (the others' follow within moments): once
// the waits it had ended, or, if it never had one, endedKept after
// every player's outcome is in (a stream on its way is answered
// meanwhile). A ticket tracked and not waited on yet is how every
// stream starts (it tracks, then waits): let go at another player's
// outcome then, a player's stream opened between two players' results
// found the ticket ended and its own result not stored, and heard
// nothing more (TestAPartyFollowedAfterItsFirstOutcomeIsLetGo failed one
// run in four so). A wait whose player's result has not come
// memberStraggle after the outcome is ended, and the ticket forgotten
// (its waiter reads the stored view; a stream whose player's result is
// not stored yet ends, and its client follows the ticket again).
const memberStraggle = 30 * time.Second

// index files tk under player, one of its players, whose results it
// follows.
func (s *state) index(player string, tk *ticket) {
	if s.byPlayer[player] == nil {
		s.byPlayer[player] = map[string]*ticket{}
	}
	s.byPlayer[player][tk.id] = tk
}

// unindex takes ticket id off player's.
func (s *state) unindex(player, id string) {
	ts := s.byPlayer[player]
	delete(ts, id)
	if len(ts) == 0 {
		delete(s.byPlayer, player)
	}
}

// follows reports whether player is one of the ticket's players.
func (tk *ticket) follows(player string) bool {
	if player == tk.player {
		return true
	}
	_, ok := tk.others[player]
	return ok
}

// allIn reports whether every player's outcome is in.
func (tk *ticket) allIn() bool {
	if tk.last == nil || !tk.last.Status.Terminal() {
		return false
	}
	for _, r := range tk.others {
		if r == nil || !r.Status.Terminal() {
			return false
		}
	}
	return true
}

// lastOf is the last result of player on the ticket (nil: none yet).
func (tk *ticket) lastOf(player string) *events.Result {
	if player == tk.player {
		return tk.last
	}
	return tk.others[player]
}

// setLast records res as player's last result.
func (tk *ticket) setLast(player string, res *events.Result) {
	if player == tk.player {
		tk.last = res
		return
	}
	tk.others[player] = res
}

// superseded records that an older ticket of player was heard
// superseded by tk (HeardSuperseding).
func (tk *ticket) superseded(player string) {
	if player == tk.player && len(tk.others) == 0 {
		tk.superseding = true
	}
}
