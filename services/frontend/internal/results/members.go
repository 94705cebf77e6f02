package results

import (
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// A party's ticket is followed on each of its players' subjects: every
// player is told on its own (the allocator signs each a join token that
// admits that player alone), so each player's waiters get that player's
// results, and the first player's stand for the ticket (its outcome's
// count, its expiry). The players' results are published together, so
// the others' terminal results follow the first's within moments; one
// that has not come memberStraggle after is read from the stream by
// whoever follows the ticket again (the ticket is forgotten: its waiters
// see their channel closed and read the stored outcome).
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

// allEnded reports whether every player of the ticket has its terminal
// result.
func (tk *ticket) allEnded() bool {
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

// forgetStragglers forgets the tickets whose first player's outcome came
// memberStraggle before now while another player's has not.
func (t *Tracker) forgetStragglers(s *state, now time.Time) {
	for _, tk := range s.tickets {
		if !tk.ended.IsZero() && now.Sub(tk.ended) >= memberStraggle {
			t.forget(s, tk)
		}
	}
}
