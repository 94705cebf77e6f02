package results

import (
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// Waits is how long a ticket of a mode may wait before the frontend
// expires it.
type Waits func(mode string) time.Duration

// ModeWaits expires a ticket at its mode's max_wait in the rule set in
// force, plus margin: the rule set is the one truth of how long a ticket
// waits, for the matchers and for the frontend. The matcher that holds a
// ticket expires it at max_wait itself and tells its players why; the
// margin lets it (the frontend's expiry is the backstop for a ticket no
// matcher holds, and the claim makes either the only outcome). A mode
// the rule set no longer has (removed by a reload; the matchers keep its
// waiting tickets) waits the longest any mode may, events.TicketMaxAge.
func ModeWaits(cur *rules.Current, margin time.Duration) Waits {
	return func(mode string) time.Duration {
		if m, ok := cur.Get().Mode(mode); ok {
			return time.Duration(m.MaxWait) + margin
		}
		return events.TicketMaxAge + margin
	}
}
