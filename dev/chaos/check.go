package chaos

import (
	"fmt"
	"sort"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Acked is a ticket a frontend acknowledged to the load tool (its
// -record file): the client's side of the history.
type Acked struct {
	TicketID   string    `json:"ticket_id"`
	PlayerID   string    `json:"player_id"`
	Frontend   string    `json:"frontend"`
	AcceptedAt time.Time `json:"accepted_at"`
}

// Verdict is what the checker found.
type Verdict struct {
	Tickets    int            `json:"tickets_acknowledged"`
	Outcomes   map[string]int `json:"outcomes"`
	Matches    int            `json:"matches"`
	Violations []string       `json:"violations"`
}

// terminal statuses: a ticket ends in exactly one of them.
var terminal = map[events.Status]bool{
	events.StatusAssigned: true, events.StatusExpired: true, events.StatusCancelled: true, events.StatusFailed: true,
}

// Check is the independent checker. From the tickets the frontends
// acknowledged and every result published (the RESULTS history), it
// verifies that:
//   - every acknowledged ticket reaches exactly one terminal state (two
//     copies of the same outcome are one; two different outcomes are not);
//   - no player is in two live (assigned) matches; each player id is used
//     by one ticket;
//   - no match got two game servers, or two rooms;
//   - nothing is stuck: a ticket acknowledged longer ago than deadline
//     before end has its terminal state, and reached it (by the time the
//     result says) within deadline.
//
// It trusts nothing the services say about themselves: only what reached
// the clients (acks) and what was published to players (results).
func Check(acked []Acked, results []events.Result, end time.Time, deadline time.Duration) Verdict {
	v := Verdict{Tickets: len(acked), Outcomes: map[string]int{}}
	fail := func(format string, args ...any) { v.Violations = append(v.Violations, fmt.Sprintf(format, args...)) }

	byTicket := map[string][]events.Result{}
	for _, r := range results {
		byTicket[r.TicketID] = append(byTicket[r.TicketID], r)
	}
	// Outcome of each ticket, and the matches of each player.
	playerMatches := map[string]map[string]bool{}
	matchServers := map[string]map[string]bool{}
	for _, r := range results {
		// A match is live once it has a game server; a match that was
		// formed and then given up (its tickets requeued) is not.
		if r.MatchID == "" || r.Status != events.StatusAssigned {
			continue
		}
		if playerMatches[r.PlayerID] == nil {
			playerMatches[r.PlayerID] = map[string]bool{}
		}
		playerMatches[r.PlayerID][r.MatchID] = true
		if r.Assignment != nil {
			if matchServers[r.MatchID] == nil {
				matchServers[r.MatchID] = map[string]bool{}
			}
			matchServers[r.MatchID][r.Assignment.Server+" room "+r.Assignment.Room] = true
		}
	}
	seen := map[string]bool{}
	for _, a := range acked {
		if seen[a.TicketID] {
			fail("ticket %s acknowledged twice", a.TicketID)
			continue
		}
		seen[a.TicketID] = true
		outcomes := map[string]bool{}
		var last events.Status
		var first time.Time
		for _, r := range byTicket[a.TicketID] {
			if !terminal[r.Status] {
				continue
			}
			if first.IsZero() || r.At.Before(first) {
				first = r.At
			}
			key := string(r.Status)
			if r.Status == events.StatusAssigned && r.Assignment != nil {
				key += " " + r.MatchID + " " + r.Assignment.Server
			}
			outcomes[key] = true
			last = r.Status
		}
		switch {
		case len(outcomes) > 1:
			fail("ticket %s (player %s) has %d terminal states: %v", a.TicketID, a.PlayerID, len(outcomes), keys(outcomes))
		case len(outcomes) == 0 && end.Sub(a.AcceptedAt) > deadline:
			fail("ticket %s (player %s) has no outcome %s after it was acknowledged (deadline %s)", a.TicketID, a.PlayerID, end.Sub(a.AcceptedAt).Round(time.Second), deadline)
		case len(outcomes) == 0:
			v.Outcomes["pending"]++
		case !first.IsZero() && first.Sub(a.AcceptedAt) > deadline:
			fail("ticket %s (player %s) reached %s only %s after it was acknowledged (deadline %s)", a.TicketID, a.PlayerID, last, first.Sub(a.AcceptedAt).Round(time.Second), deadline)
			v.Outcomes[string(last)]++
		default:
			v.Outcomes[string(last)]++
		}
	}
	for player, matches := range playerMatches {
		if len(matches) > 1 {
			fail("player %s is in %d matches: %v", player, len(matches), keys(matches))
		}
	}
	for match, servers := range matchServers {
		if len(servers) > 1 {
			fail("match %s got %d game servers: %v", match, len(servers), keys(servers))
		}
	}
	v.Matches = len(matchServers)
	sort.Strings(v.Violations)
	return v
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
