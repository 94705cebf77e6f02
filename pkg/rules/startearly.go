package rules

import (
	"fmt"
	"time"
)

// check reports what is wrong with a mode's start_early. A match opened
// early is a smaller match of the same mode, so it needs two teams to be
// a match at all and fewer than the mode's to be early; and the anchor
// must wait for a full match a while first, but not so long that it
// expires before it can open one.
func (se *StartEarly) check(m *Mode) []error {
	if se == nil {
		return nil
	}
	var errs []error
	if se.MinTeams < 2 || se.MinTeams >= m.Teams {
		errs = append(errs, fmt.Errorf("start_early.min_teams %d: want 2 or more and fewer than the mode's %d teams", se.MinTeams, m.Teams))
	}
	if se.After <= 0 || se.After >= m.MaxWait {
		errs = append(errs, fmt.Errorf("start_early.after %s: want above 0 and below max_wait %s", time.Duration(se.After), time.Duration(m.MaxWait)))
	}
	return errs
}
