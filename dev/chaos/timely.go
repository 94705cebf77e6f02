package chaos

// Timeliness: what the checker does not call a violation but a player
// feels. A ticket may end late (past its mode's max wait) or be told
// "expired" or "failed" although it could have played; neither breaks a
// guarantee, both are the cost of a fault, and issue #19 asks for both
// figures beside the verdict (goal: none).

import (
	"slices"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

const (
	// lateGrace is how far past its max wait a ticket's outcome may come
	// without counting late: the expiry runs on a one-second tick, and an
	// assignment follows its match by one allocation.
	lateGrace = 5 * time.Second
	// partnerOverlap is how long two tickets must wait side by side to
	// count as partners that could have been matched: a matcher tick, a
	// delivery and a commit, many times over.
	partnerOverlap = 2 * time.Second
	// examplesKept bounds the ticket ids a report lists for each count.
	examplesKept = 20
)

// Timely counts the tickets that ended late or needlessly.
type Timely struct {
	// Late: the first outcome came more than the max wait (and lateGrace)
	// after the ticket was acknowledged. LateMaxSeconds is the latest.
	Late           int            `json:"late"`
	LateByOutcome  map[string]int `json:"late_by_outcome,omitempty"`
	LateMaxSeconds float64        `json:"late_max_seconds,omitempty"`
	LateTickets    []string       `json:"late_tickets,omitempty"`
	// LateAfterMatch: of the late, those first told "matched" in time
	// (within the max wait and lateGrace): what made them late came after
	// a match was formed for them: its allocation request sent again by
	// its matcher, its delivery to an allocator, the allocation, or its
	// tickets given back and matched again. LateAfterMatchMaxSeconds is
	// the longest from such a first "matched" to the outcome.
	LateAfterMatch           int     `json:"late_after_match"`
	LateAfterMatchMaxSeconds float64 `json:"late_after_match_max_seconds,omitempty"`
	// Needless: told "expired" or "failed" while a partner (another
	// player's ticket of the same region and tier) waited beside it for
	// partnerOverlap and a game server was given to some match meanwhile.
	NeedlessExpired int      `json:"needless_expired"`
	NeedlessFailed  int      `json:"needless_failed"`
	NeedlessTickets []string `json:"needless_tickets,omitempty"`
}

// waitSpan is when an acknowledged ticket waited: from its
// acknowledgement to its first result past "queued" (or the end of the
// history), and how it ended.
type waitSpan struct {
	a          Acked
	shard      string
	from, to   time.Time
	outcome    events.Status // its first terminal status; "" if none
	terminalAt time.Time
	matchedAt  time.Time // its first "matched"; zero if none
}

// Timeliness counts, over the whole history, the tickets that ended late
// and the ones told "expired" or "failed" needlessly. end is when the
// history was read: a ticket still waiting waits until then.
func Timeliness(acked []Acked, results []events.Result, maxWait time.Duration, end time.Time) Timely {
	spans := waitSpans(acked, results, end)
	var assignedAt []time.Time
	for _, r := range results {
		if r.Status == events.StatusAssigned {
			assignedAt = append(assignedAt, r.At)
		}
	}
	slices.SortFunc(assignedAt, time.Time.Compare)
	byShard := map[string][]*waitSpan{}
	for i := range spans {
		byShard[spans[i].shard] = append(byShard[spans[i].shard], &spans[i])
	}
	t := Timely{LateByOutcome: map[string]int{}}
	for i := range spans {
		s := &spans[i]
		if s.outcome == "" {
			continue
		}
		if took := s.terminalAt.Sub(s.a.AcceptedAt); took > maxWait+lateGrace {
			t.Late++
			t.LateByOutcome[string(s.outcome)]++
			t.LateMaxSeconds = max(t.LateMaxSeconds, took.Seconds())
			t.LateTickets = keep(t.LateTickets, s.a.TicketID)
			if !s.matchedAt.IsZero() && s.matchedAt.Sub(s.a.AcceptedAt) <= maxWait+lateGrace {
				t.LateAfterMatch++
				t.LateAfterMatchMaxSeconds = max(t.LateAfterMatchMaxSeconds, s.terminalAt.Sub(s.matchedAt).Seconds())
			}
		}
		if s.outcome != events.StatusExpired && s.outcome != events.StatusFailed {
			continue
		}
		if !serverGiven(assignedAt, s.from, s.terminalAt.Add(lateGrace)) || !partnered(s, byShard[s.shard]) {
			continue
		}
		if s.outcome == events.StatusExpired {
			t.NeedlessExpired++
		} else {
			t.NeedlessFailed++
		}
		t.NeedlessTickets = keep(t.NeedlessTickets, s.a.TicketID)
	}
	return t
}

func waitSpans(acked []Acked, results []events.Result, end time.Time) []waitSpan {
	byTicket := map[string][]events.Result{}
	for _, r := range results {
		byTicket[r.TicketID] = append(byTicket[r.TicketID], r)
	}
	tiers := events.Tiers(events.DefaultTiers)
	spans := make([]waitSpan, 0, len(acked))
	for _, a := range acked {
		s := waitSpan{a: a, from: a.AcceptedAt, to: end, shard: a.Region}
		if tier, ok := tiers.For(a.Skill); ok && a.Skill != 0 {
			s.shard += "." + tier
		}
		for _, r := range byTicket[a.TicketID] {
			if r.Status != events.StatusQueued && r.At.Before(s.to) {
				s.to = r.At
			}
			if r.Status == events.StatusMatched && (s.matchedAt.IsZero() || r.At.Before(s.matchedAt)) {
				s.matchedAt = r.At
			}
			if terminal[r.Status] && (s.outcome == "" || r.At.Before(s.terminalAt)) {
				s.outcome, s.terminalAt = r.Status, r.At
			}
		}
		spans = append(spans, s)
	}
	return spans
}

// serverGiven: some match was assigned a game server between from and to.
func serverGiven(assignedAt []time.Time, from, to time.Time) bool {
	i, _ := slices.BinarySearchFunc(assignedAt, from, time.Time.Compare)
	return i < len(assignedAt) && !assignedAt[i].After(to)
}

// partnered: another player's ticket of the same shard waited beside s
// (which has an outcome) for partnerOverlap at least.
func partnered(s *waitSpan, shard []*waitSpan) bool {
	for _, o := range shard {
		if o.a.PlayerID == s.a.PlayerID {
			continue
		}
		// s could have been matched until its outcome (a match given up
		// puts it back); o only until it was first matched.
		from, to := later(s.from, o.from), earlier(s.terminalAt, o.to)
		if to.Sub(from) >= partnerOverlap {
			return true
		}
	}
	return false
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func keep(ids []string, id string) []string {
	if len(ids) >= examplesKept {
		return ids
	}
	return append(ids, id)
}
