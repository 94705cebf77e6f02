package pool

import (
	"errors"
	"fmt"
	"time"
)

// Why Take refuses a proposed match.
var (
	// ErrNotWaiting: a proposed ticket left the pool since it was
	// proposed (matched, expired, cancelled), or is there as another
	// entry (another message of the same ticket id).
	ErrNotWaiting = errors.New("ticket no longer waiting")
	// ErrUnfit: a proposed ticket does not fit the match by the mode's
	// rules.
	ErrUnfit = errors.New("ticket does not fit the match by the mode's rules")
)

// Take removes the tickets of a match proposed from outside the pool (a
// match function's), by team, if every one still waits in it as the very
// entry proposed and fits the match by the mode's rules: each must fit
// the anchor, here the ticket that has waited longest (fits, the one
// judge of the rules, as in MatchAround, where a sweep anchors a match
// on its oldest ticket). Otherwise nothing changes and the error, which
// wraps ErrNotWaiting or ErrUnfit, names the ticket. Team sizes, parties
// and players are the caller's to check (matchfn.CheckReply); an entry
// named twice is refused here too, since unlinking it twice would break
// the pool.
func (p *Pool) Take(teams [][]*Entry, now time.Time) error {
	var anchor *Entry
	seen := map[*Entry]bool{}
	for _, team := range teams {
		for _, e := range team {
			if seen[e] {
				return fmt.Errorf("ticket %s proposed twice", e.TicketID)
			}
			seen[e] = true
			if !p.Contains(e) {
				return fmt.Errorf("%w: %s", ErrNotWaiting, e.TicketID)
			}
			if anchor == nil || e.Created < anchor.Created {
				anchor = e
			}
		}
	}
	for e := range seen {
		if e != anchor && !p.fits(anchor, e, now) {
			return fmt.Errorf("%w: %s (skill %d) with %s (skill %d, the longest waiting)", ErrUnfit, e.TicketID, e.Skill, anchor.TicketID, anchor.Skill)
		}
	}
	for e := range seen {
		p.unlink(e)
	}
	return nil
}
