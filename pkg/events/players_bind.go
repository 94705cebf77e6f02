package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Ticket ids are bound to their players in the players bucket before an
// entry names them ([Players], "Ticket ids").

// ticketKey is the key that binds a ticket id to its players. A player id
// is a token (letters, digits, '-', '_'), so it is never a player's key.
func ticketKey(ticketID string) string { return "ticket." + ticketID }

// bind records t's players as those of its id, or checks that they are
// (in any order); ErrTicketIDTaken if the id is bound to other players.
func (p *Players) bind(ctx context.Context, t LiveTicket) error {
	value, err := boundValue(t)
	if err != nil {
		return err
	}
	players := slices.Sorted(slices.Values(t.Players))
	key := ticketKey(t.TicketID)
	for {
		_, err := p.kv.Create(ctx, key, value)
		if err == nil {
			return nil
		}
		if !keyExists(err) {
			return fmt.Errorf("bind ticket %s to its players: %w", t.TicketID, err)
		}
		e, err := p.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // gone in between (aged out): bind it again
		}
		if err != nil {
			return fmt.Errorf("players of ticket %s: %w", t.TicketID, err)
		}
		var bound []string
		if json.Unmarshal(e.Value(), &bound) != nil || !slices.Equal(bound, players) {
			// The players it is bound to are not named: the error may
			// reach the publisher's players.
			return fmt.Errorf("ticket %s: %w", t.TicketID, ErrTicketIDTaken)
		}
		return nil
	}
}

// boundValue is what binds t's id to its players: their ids, sorted.
func boundValue(t LiveTicket) ([]byte, error) {
	value, err := json.Marshal(slices.Sorted(slices.Values(t.Players)))
	if err != nil {
		return nil, fmt.Errorf("encode players of ticket %s: %w", t.TicketID, err)
	}
	return value, nil
}
