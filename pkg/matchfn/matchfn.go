package matchfn

import (
	"fmt"
	"strings"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// SchemaVersion is the version of Request and Reply this package writes
// and reads; a payload without one is read as version 1.
const SchemaVersion = 1

// Limits of the exchange.
const (
	// MaxCandidates bounds a request's candidates: the rule set's bound
	// on max_candidates.
	MaxCandidates = rules.MaxFunctionCandidates
	// MaxMessageBytes bounds a request and a reply: NATS' default
	// max_payload. A request that would be larger is sent with fewer
	// candidates (Call), the youngest left out.
	MaxMessageBytes = 1 << 20
)

// Request is what the matcher sends a match function: one mode's waiting
// tickets in one shard.
type Request struct {
	SchemaVersion int    `json:"schema_version"`
	Mode          Mode   `json:"mode"`
	Region        string `json:"region"`
	Tier          string `json:"tier"`
	// Candidates are waiting tickets, oldest first.
	Candidates []Candidate `json:"candidates"`
}

// Mode is what a function must know of the mode to propose a match.
type Mode struct {
	Name string `json:"name"`
	// Teams and TeamSize: a proposal has exactly Teams teams of exactly
	// TeamSize players each.
	Teams    int `json:"teams"`
	TeamSize int `json:"team_size"`
}

// Candidate is one waiting ticket. Its players are one party: they
// always play on one team.
type Candidate struct {
	TicketID string   `json:"ticket_id"`
	Players  []string `json:"players"`
	Skill    int      `json:"skill"`
	// WaitedMS is how long the ticket has waited when the request is sent.
	WaitedMS int64 `json:"waited_ms"`
	// Attributes are the ticket's, as its player sent them (events.Ticket).
	Attributes *events.Attributes `json:"attributes,omitempty"`
	// LatenciesMS are the other regions the ticket reported, by round
	// trip; empty for a ticket visiting from another region.
	LatenciesMS map[string]int `json:"latencies_ms,omitempty"`
}

// Reply is what a match function answers: the matches it proposes.
type Reply struct {
	SchemaVersion int        `json:"schema_version"`
	Matches       []Proposal `json:"matches"`
}

// Proposal is one proposed match: the ticket ids of each team.
type Proposal struct {
	Teams [][]string `json:"teams"`
}

// Error is a function's refusal to answer, sent as a micro error (the
// Nats-Service-Error and Nats-Service-Error-Code headers): Call returns
// it, Serve sends one for an error its function returns.
type Error struct {
	// Code is an HTTP-like status: "400" for a request the function
	// cannot read, "500" for its own failure.
	Code        string
	Description string
}

func (e *Error) Error() string {
	return fmt.Sprintf("match function error %s: %s", e.Code, e.Description)
}

// Codes of an Error.
const (
	CodeBadRequest = "400"
	CodeFailed     = "500"
)

// String is a proposal as a log line shows it: "t1,t2 | t3,t4".
func (p Proposal) String() string {
	teams := make([]string, len(p.Teams))
	for i, t := range p.Teams {
		teams[i] = strings.Join(t, ",")
	}
	return strings.Join(teams, " | ")
}
