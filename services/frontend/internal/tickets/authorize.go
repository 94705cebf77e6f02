package tickets

import (
	"fmt"
	"slices"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
)

// Authorize checks a request against its caller, filling in a player
// caller's own id when the request names nobody.
func Authorize(c identity.Caller, req *Request) error {
	if c.Server {
		return nil
	}
	if req.TicketID != "" {
		return &events.ValidationError{Kind: "request", Fields: []events.FieldError{{Field: "ticket_id", Reason: "only a server credential may choose a ticket id; use an Idempotency-Key"}}}
	}
	switch {
	case req.PlayerID == "" && req.Party == nil:
		req.PlayerID = c.PlayerID
	case req.PlayerID != "" && req.PlayerID != c.PlayerID:
		return fmt.Errorf("%w: player_id is not the caller's", ErrForbidden)
	case req.Party != nil && !slices.Contains(req.Party, c.PlayerID):
		return fmt.Errorf("%w: the caller is not in the party", ErrForbidden)
	case len(req.Party) > 1:
		// A player speaks for itself alone: a party it named would
		// supersede its other players' waiting tickets and put them in a
		// match they never asked for. Who is in a party is the game's to
		// say (its party service, with a server token).
		return fmt.Errorf("%w: a party of several players is queued with a server token (the game's party service)", ErrForbidden)
	}
	if c.Ticket != nil {
		return fromClaim(c.Ticket, req)
	}
	return nil
}

// fromClaim gives req a player's skill and attributes as its token's
// ticket claim says them (identity.Config.TicketClaim), refusing a
// request that says otherwise: a player who could name its own rating,
// platform or level could play wherever it liked.
func fromClaim(tc *identity.TicketClaim, req *Request) error {
	if req.Skill != nil && *req.Skill != *tc.Skill {
		return fmt.Errorf("%w: skill is the identity provider's to say (the token's ticket claim)", ErrForbidden)
	}
	if req.Attributes != nil && !req.Attributes.Same(tc.Attributes) {
		return fmt.Errorf("%w: attributes are the identity provider's to say (the token's ticket claim)", ErrForbidden)
	}
	skill := *tc.Skill
	req.Skill, req.Attributes = &skill, tc.Attributes.Clone() // the claim is shared by every request of the token
	return nil
}
