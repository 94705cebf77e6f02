package chaos

import (
	"fmt"
	"maps"
	"slices"
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
	// Via is how the ticket arrived: "http" (a frontend's 202; the
	// default) or "nats" (JetStream's publish ack, no frontend).
	Via string `json:"via,omitempty"`
}

// viaNATS: the ticket was published on JetStream, not POSTed.
const viaNATS = "nats"

// Verdict is what the checker found.
type Verdict struct {
	Tickets    int            `json:"tickets_acknowledged"`
	Outcomes   map[string]int `json:"outcomes"`
	Matches    int            `json:"matches"`
	Violations []string       `json:"violations"`
	// Races counts players in two matches whose second ticket came over
	// NATS, or was never acknowledged (its POST failed after the ticket
	// was queued), before the first match was formed: allowed (see Check).
	Races int `json:"races,omitempty"`
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
//   - no match has one player twice (on two tickets, or twice on one);
//   - at most one live ticket per player: a player is in two live
//     (assigned) matches only if the later match's ticket was acknowledged
//     by a frontend after the earlier match was formed (formed: match id ->
//     when the matcher formed it). A frontend supersedes the player's older
//     ticket before it answers 202, so an older ticket still waiting then
//     can never be matched afterwards. Over NATS there is no such moment
//     (the ticket is taken in by its shard's owner after JetStream acked
//     it), and none for a ticket whose POST failed after it was queued (a
//     client retries such a request with its Idempotency-Key), so a second
//     match whose ticket came over NATS before the first match was formed,
//     or was never acknowledged, is not a violation the checker can tell
//     from a race the system is allowed to lose: such pairs are only
//     counted (Races). The formation times are the matchers' own records, the
//     one thing the checker takes from the services: a result comes after
//     its match's claims, and a frontend's 202 may come in between;
//   - no match got two game servers, or two rooms;
//   - nothing is stuck: a ticket acknowledged longer ago than deadline
//     before end has its terminal state, and reached it (by the time the
//     result says) within deadline.
//
// It trusts nothing the services say about themselves: only what reached
// the clients (acks) and what was published to players (results).
func Check(acked []Acked, results []events.Result, formed map[string]time.Time, end time.Time, deadline time.Duration) Verdict {
	v := Verdict{Tickets: len(acked), Outcomes: map[string]int{}}
	fail := func(format string, args ...any) { v.Violations = append(v.Violations, fmt.Sprintf(format, args...)) }

	byTicket := map[string][]events.Result{}
	for _, r := range results {
		byTicket[r.TicketID] = append(byTicket[r.TicketID], r)
	}
	formedAt := maps.Clone(formed)
	if formedAt == nil {
		formedAt = map[string]time.Time{}
	}
	ackedByID := map[string]Acked{}
	for _, a := range acked {
		ackedByID[a.TicketID] = a
	}
	// Outcome of each ticket, the matches of each player (with the ticket
	// that put the player there), and the tickets of each player in each
	// match.
	playerMatches := map[string]map[string]string{}
	matchPlayers := map[string]map[string]map[string]bool{}
	matchServers := map[string]map[string]bool{}
	for _, r := range results {
		if r.MatchID == "" || (r.Status != events.StatusAssigned && r.Status != events.StatusMatched) {
			continue
		}
		if matchPlayers[r.MatchID] == nil {
			matchPlayers[r.MatchID] = map[string]map[string]bool{}
		}
		if matchPlayers[r.MatchID][r.PlayerID] == nil {
			matchPlayers[r.MatchID][r.PlayerID] = map[string]bool{}
		}
		matchPlayers[r.MatchID][r.PlayerID][r.TicketID] = true
		if at, known := formedAt[r.MatchID]; !known || (formed[r.MatchID].IsZero() && r.At.Before(at)) {
			// No record of when it was formed: its first result is
			// the earliest the checker can vouch for.
			formedAt[r.MatchID] = r.At
		}
		// A match is live once it has a game server; a match that was
		// formed and then given up (its tickets requeued) is not.
		if r.Status != events.StatusAssigned {
			continue
		}
		if playerMatches[r.PlayerID] == nil {
			playerMatches[r.PlayerID] = map[string]string{}
		}
		playerMatches[r.PlayerID][r.MatchID] = r.TicketID
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
	for match, players := range matchPlayers {
		for player, tickets := range players {
			if len(tickets) > 1 {
				fail("match %s has player %s twice (tickets %v)", match, player, keys(tickets))
			}
		}
	}
	for player, matches := range playerMatches {
		if len(matches) < 2 {
			continue
		}
		// In the order they were formed, each match after the first must
		// come from a ticket acknowledged after the one before was formed.
		ids := keys(matches)
		sort.Slice(ids, func(i, j int) bool { return formedAt[ids[i]].Before(formedAt[ids[j]]) })
		for i := 1; i < len(ids); i++ {
			prev, cur := ids[i-1], ids[i]
			a, known := ackedByID[matches[cur]]
			switch {
			case !known || a.Via == viaNATS:
				v.Races++
			case !a.AcceptedAt.Before(formedAt[prev]):
				// Queued again after the earlier match: a new ticket.
			default:
				fail("player %s is in %d matches: %v (ticket %s was acknowledged at %s, before match %s was formed at %s, and still matched)",
					player, len(matches), keys(matches), a.TicketID, a.AcceptedAt.Format(time.RFC3339Nano), prev, formedAt[prev].Format(time.RFC3339Nano))
			}
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

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
