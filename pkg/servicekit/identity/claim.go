package identity

import (
	"encoding/json"
	"fmt"

	"github.com/golang-jwt/jwt/v5"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TicketClaim is what a player token's ticket claim says of its player:
// {"skill": 1850, "attributes": {"strings": {"platform": "pc"}}}. A
// rating and a platform are the studio's to know, not the player's to
// say: with the claim configured, the frontend takes them from it.
type TicketClaim struct {
	// Skill is required.
	Skill *int `json:"skill"`
	// Attributes left out: the player has none.
	Attributes *events.Attributes `json:"attributes,omitempty"`
}

// ticketClaim reads claim name of a player token's claims, strictly: a
// token without it, or with anything else in it, is refused.
func ticketClaim(claims jwt.MapClaims, name string) (*TicketClaim, error) {
	raw, ok := claims[name]
	if !ok {
		return nil, fmt.Errorf("%w: no %q claim (the player's skill and attributes)", ErrInvalidToken, name)
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: claim %q: %w", ErrInvalidToken, name, err)
	}
	var tc TicketClaim
	if err := events.DecodeStrict("ticket claim", b, &tc); err != nil {
		return nil, fmt.Errorf("%w: claim %q: %w", ErrInvalidToken, name, err)
	}
	if tc.Skill == nil {
		return nil, fmt.Errorf("%w: claim %q holds no skill", ErrInvalidToken, name)
	}
	return &tc, nil
}
