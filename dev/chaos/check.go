package chaos

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/loadrecord"
)

// Acked is a ticket a frontend acknowledged to the load tool (its
// -record file): the client's side of the history.
type Acked = loadrecord.Acked

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
	// NoShows counts tickets given a game server whose creation no
	// client was told of (its POST answered an error, or nothing, after
	// the ticket was queued; or its NATS publish went unacked, stored
	// all the same): a player who may never come, its partners waiting
	// for it in the game. Counted, not a violation: a creation cut off
	// cannot always know its ticket was queued. NoShowTickets names the
	// first few.
	NoShows       int      `json:"no_shows,omitempty"`
	NoShowTickets []string `json:"no_show_tickets,omitempty"`
	// noShows are every no-show's assignment, for traceNoShows.
	noShows []events.Result
}

// noShowsNamed is how many no-shows the verdict names.
const noShowsNamed = 10

// terminal statuses: a ticket ends in exactly one of them.
var terminal = map[events.Status]bool{
	events.StatusAssigned: true, events.StatusExpired: true, events.StatusCancelled: true, events.StatusFailed: true,
}

// Check is the independent checker. From the tickets the frontends
// acknowledged and every result published (the RESULTS history), it
// verifies that:
//   - every acknowledged ticket reaches exactly one terminal state (two
//     copies of the same outcome are one; two different outcomes are not);
//   - no match has one player on two tickets (results are per player
//     and ticket, so a player twice on one ticket would not show; the
//     ticket contract refuses such a party);
//   - at most one live ticket per player: a player is in two live
//     (assigned) matches only if the later match's ticket was acknowledged
//     by a frontend after the earlier match was formed (formed: match id ->
//     when the matcher formed it). A frontend takes the newer ticket (and
//     supersedes the older) before it answers 202, so a match formed
//     after the 202 finds the older ticket stale when it checks its
//     tickets, and is undone. Over NATS there is no such moment
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
	c := newChecker(acked, results, formed)
	c.oneOutcomeEach(acked, end, deadline)
	c.noPlayerTwiceInAMatch()
	c.oneLiveTicketPerPlayer()
	c.oneServerPerMatch()
	c.noShows()
	c.v.Matches = len(c.matchServers)
	sort.Strings(c.v.Violations)
	return c.v
}

// checker is one run of Check: the history indexed every way a property
// reads it, and the verdict so far.
type checker struct {
	v         Verdict
	byTicket  map[string][]events.Result
	ackedByID map[string]Acked
	// formedAt is when each match was formed: the matchers' record, or
	// else its first result.
	formedAt map[string]time.Time
	// playerMatches: player -> live (assigned) match -> the ticket that
	// put the player there.
	playerMatches map[string]map[string]string
	// matchPlayers: match -> player -> the player's tickets in it.
	matchPlayers map[string]map[string]map[string]bool
	// matchServers: match -> "server room room" it was given.
	matchServers map[string]map[string]bool
}

func (c *checker) fail(format string, args ...any) {
	c.v.Violations = append(c.v.Violations, fmt.Sprintf(format, args...))
}

func newChecker(acked []Acked, results []events.Result, formed map[string]time.Time) *checker {
	c := &checker{
		v:        Verdict{Tickets: len(acked), Outcomes: map[string]int{}},
		byTicket: map[string][]events.Result{}, ackedByID: map[string]Acked{},
		formedAt:      maps.Clone(formed),
		playerMatches: map[string]map[string]string{},
		matchPlayers:  map[string]map[string]map[string]bool{},
		matchServers:  map[string]map[string]bool{},
	}
	for _, r := range results {
		c.byTicket[r.TicketID] = append(c.byTicket[r.TicketID], r)
	}
	if c.formedAt == nil {
		c.formedAt = map[string]time.Time{}
	}
	for _, a := range acked {
		c.ackedByID[a.TicketID] = a
	}
	for _, r := range results {
		c.indexMatch(r, formed)
	}
	return c
}

// indexMatch files a result of a formed match under its match, player and
// game server.
func (c *checker) indexMatch(r events.Result, formed map[string]time.Time) {
	if r.MatchID == "" || (r.Status != events.StatusAssigned && r.Status != events.StatusMatched) {
		return
	}
	if c.matchPlayers[r.MatchID] == nil {
		c.matchPlayers[r.MatchID] = map[string]map[string]bool{}
	}
	if c.matchPlayers[r.MatchID][r.PlayerID] == nil {
		c.matchPlayers[r.MatchID][r.PlayerID] = map[string]bool{}
	}
	c.matchPlayers[r.MatchID][r.PlayerID][r.TicketID] = true
	if at, known := c.formedAt[r.MatchID]; !known || (formed[r.MatchID].IsZero() && r.At.Before(at)) {
		// No record of when it was formed: its first result is
		// the earliest the checker can vouch for.
		c.formedAt[r.MatchID] = r.At
	}
	// A match is live once it has a game server; a match that was
	// formed and then given up (its tickets requeued) is not.
	if r.Status != events.StatusAssigned {
		return
	}
	if c.playerMatches[r.PlayerID] == nil {
		c.playerMatches[r.PlayerID] = map[string]string{}
	}
	c.playerMatches[r.PlayerID][r.MatchID] = r.TicketID
	if r.Assignment != nil {
		if c.matchServers[r.MatchID] == nil {
			c.matchServers[r.MatchID] = map[string]bool{}
		}
		c.matchServers[r.MatchID][r.Assignment.Server+" room "+r.Assignment.Room] = true
	}
}

// oneOutcomeEach: every acknowledged ticket reaches exactly one terminal
// state, within deadline; the ones still inside it are counted pending.
func (c *checker) oneOutcomeEach(acked []Acked, end time.Time, deadline time.Duration) {
	seen := map[string]bool{}
	for _, a := range acked {
		if seen[a.TicketID] {
			c.fail("ticket %s acknowledged twice", a.TicketID)
			continue
		}
		seen[a.TicketID] = true
		outcomes, last, first := c.terminalStates(a.TicketID)
		switch {
		case len(outcomes) > 1:
			c.fail("ticket %s (player %s) has %d terminal states: %v", a.TicketID, a.PlayerID, len(outcomes), keys(outcomes))
		case len(outcomes) == 0 && end.Sub(a.AcceptedAt) > deadline:
			c.fail("ticket %s (player %s) has no outcome %s after it was acknowledged (deadline %s)", a.TicketID, a.PlayerID, end.Sub(a.AcceptedAt).Round(time.Second), deadline)
		case len(outcomes) == 0:
			c.v.Outcomes["pending"]++
		case !first.IsZero() && first.Sub(a.AcceptedAt) > deadline:
			c.fail("ticket %s (player %s) reached %s only %s after it was acknowledged (deadline %s)", a.TicketID, a.PlayerID, last, first.Sub(a.AcceptedAt).Round(time.Second), deadline)
			c.v.Outcomes[string(last)]++
		default:
			c.v.Outcomes[string(last)]++
		}
	}
}

// terminalStates are a ticket's distinct terminal outcomes (two copies of
// the same outcome are one), the last one's status, and when the first
// was reached.
func (c *checker) terminalStates(ticket string) (outcomes map[string]bool, last events.Status, first time.Time) {
	outcomes = map[string]bool{}
	for _, r := range c.byTicket[ticket] {
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
	return outcomes, last, first
}

// noPlayerTwiceInAMatch: no match has one player on two tickets.
func (c *checker) noPlayerTwiceInAMatch() {
	for match, players := range c.matchPlayers {
		for player, tickets := range players {
			if len(tickets) > 1 {
				c.fail("match %s has player %s twice (tickets %v)", match, player, keys(tickets))
			}
		}
	}
}

// oneLiveTicketPerPlayer: in the order they were formed, each live match
// of a player after the first must come from a ticket acknowledged after
// the one before was formed (see Check for the races it only counts).
func (c *checker) oneLiveTicketPerPlayer() {
	for player, matches := range c.playerMatches {
		if len(matches) < 2 {
			continue
		}
		ids := keys(matches)
		sort.Slice(ids, func(i, j int) bool { return c.formedAt[ids[i]].Before(c.formedAt[ids[j]]) })
		for i := 1; i < len(ids); i++ {
			prev, cur := ids[i-1], ids[i]
			a, known := c.ackedByID[matches[cur]]
			switch {
			case !known || a.Via == viaNATS:
				c.v.Races++
			case !a.AcceptedAt.Before(c.formedAt[prev]):
				// Queued again after the earlier match: a new ticket.
			default:
				c.fail("player %s is in %d matches: %v (ticket %s was acknowledged at %s, before match %s was formed at %s, and still matched)",
					player, len(matches), keys(matches), a.TicketID, a.AcceptedAt.Format(time.RFC3339Nano), prev, c.formedAt[prev].Format(time.RFC3339Nano))
			}
		}
	}
}

// noShows counts the tickets assigned that no client acknowledged.
func (c *checker) noShows() {
	for _, ticket := range slices.Sorted(maps.Keys(c.byTicket)) {
		if _, known := c.ackedByID[ticket]; known {
			continue
		}
		i := slices.IndexFunc(c.byTicket[ticket], func(r events.Result) bool { return r.Status == events.StatusAssigned })
		if i < 0 {
			continue
		}
		c.v.noShows = append(c.v.noShows, c.byTicket[ticket][i])
		c.v.NoShows++
		if len(c.v.NoShowTickets) < noShowsNamed {
			c.v.NoShowTickets = append(c.v.NoShowTickets, ticket)
		}
	}
}

// oneServerPerMatch: no match got two game servers, or two rooms.
func (c *checker) oneServerPerMatch() {
	for match, servers := range c.matchServers {
		if len(servers) > 1 {
			c.fail("match %s got %d game servers: %v", match, len(servers), keys(servers))
		}
	}
}

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
