package matchfn

import "fmt"

// Reason names why a proposal was refused; the matcher counts refusals
// by it (label "reason").
type Reason string

// Reasons a proposal is refused. The first five are CheckReply's; the
// matcher adds the last two: ReasonNotWaiting when a ticket left its pool
// during the call (matched, expired or cancelled meanwhile: no fault of
// the function), ReasonRules when a ticket does not fit the match by the
// mode's rule set (skill window, attribute rules), which binds a
// function's matches as it binds the built-in ones.
const (
	ReasonUnknownTicket Reason = "unknown_ticket" // not a candidate of the request
	ReasonTicketTwice   Reason = "ticket_twice"   // named more than once in the whole reply
	ReasonTeams         Reason = "teams"          // not exactly the mode's teams
	ReasonTeamSize      Reason = "team_size"      // a team not exactly team_size players
	ReasonPlayerTwice   Reason = "player_twice"   // one player on two tickets of the proposal
	ReasonNotWaiting    Reason = "not_waiting"
	ReasonRules         Reason = "rules"
)

// ProposalError is why one proposal was refused.
type ProposalError struct {
	Reason Reason
	Detail string
}

func (e *ProposalError) Error() string { return string(e.Reason) + ": " + e.Detail }

func refuse(r Reason, format string, args ...any) *ProposalError {
	return &ProposalError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// CheckReply judges each proposal of rep against req, the request it
// answers: the i-th error is nil for a good proposal, else a
// *ProposalError. A ticket named twice anywhere in the reply makes every
// proposal naming it bad: which one the function meant cannot be told.
// Proposals are judged alone otherwise, so one bad proposal does not
// spoil the others.
func CheckReply(req *Request, rep *Reply) []error {
	players := make(map[string][]string, len(req.Candidates))
	for _, c := range req.Candidates {
		players[c.TicketID] = c.Players
	}
	named := map[string]int{}
	for _, p := range rep.Matches {
		for _, team := range p.Teams {
			for _, id := range team {
				named[id]++
			}
		}
	}
	errs := make([]error, len(rep.Matches))
	for i, p := range rep.Matches {
		if err := checkProposal(req.Mode, p, players, named); err != nil {
			errs[i] = err
		}
	}
	return errs
}

func checkProposal(m Mode, p Proposal, players map[string][]string, named map[string]int) *ProposalError {
	if len(p.Teams) != m.Teams {
		return refuse(ReasonTeams, "%d teams, want %d", len(p.Teams), m.Teams)
	}
	seen := map[string]string{} // player to ticket
	for t, team := range p.Teams {
		n := 0
		for _, id := range team {
			ps, known := players[id]
			switch {
			case !known:
				return refuse(ReasonUnknownTicket, "ticket %q is not a candidate", id)
			case named[id] > 1:
				return refuse(ReasonTicketTwice, "ticket %q is named %d times in the reply", id, named[id])
			}
			for _, pl := range ps {
				if other, twice := seen[pl]; twice {
					return refuse(ReasonPlayerTwice, "player %q is on tickets %q and %q", pl, other, id)
				}
				seen[pl] = id
			}
			n += len(ps)
		}
		if n != m.TeamSize {
			return refuse(ReasonTeamSize, "team %d has %d players, want %d", t, n, m.TeamSize)
		}
	}
	return nil
}
