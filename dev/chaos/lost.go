package chaos

// What the store says of a ticket without an outcome: the checker trusts
// only acks and results, but once it finds a ticket lost, the history of
// its claim (who decided its outcome, and when) is what tells a claim
// whose result was never published from a ticket nobody decided.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Lost is an acknowledged ticket with no outcome in the history.
type Lost struct {
	TicketID   string    `json:"ticket_id"`
	PlayerID   string    `json:"player_id"`
	Frontend   string    `json:"frontend,omitempty"`
	AcceptedAt time.Time `json:"accepted_at"`
	// Claim is every revision of the ticket's claim, and of the record
	// that its outcome was told, as "<stored time> <op> <value>"; empty:
	// nobody claimed it.
	Claim []string `json:"claim"`
}

// lostTickets lists the acknowledged tickets without a terminal result,
// each with its claim's history (errors reading it are written there).
func lostTickets(ctx context.Context, js jetstream.JetStream, acked []Acked, results []events.Result) []Lost {
	done := map[string]bool{}
	for _, r := range results {
		if terminal[r.Status] {
			done[r.TicketID] = true
		}
	}
	var out []Lost
	var kv jetstream.KeyValue
	for _, a := range acked {
		if done[a.TicketID] {
			continue
		}
		l := Lost{TicketID: a.TicketID, PlayerID: a.PlayerID, Frontend: a.Frontend, AcceptedAt: a.AcceptedAt}
		if kv == nil {
			var err error
			if kv, err = js.KeyValue(ctx, events.Subjects{}.ClaimsBucket()); err != nil {
				l.Claim = []string{"claims bucket: " + err.Error()}
				out = append(out, l)
				continue
			}
		}
		l.Claim = append(claimHistory(ctx, kv, a.TicketID), claimHistory(ctx, kv, "told."+a.TicketID)...)
		out = append(out, l)
	}
	return out
}

func claimHistory(ctx context.Context, kv jetstream.KeyValue, key string) []string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	es, err := kv.History(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", key, err)}
	}
	var out []string
	for _, e := range es {
		op := strings.TrimPrefix(e.Operation().String(), "KeyValue")
		out = append(out, fmt.Sprintf("%s %s %s %s", e.Created().UTC().Format("15:04:05.000"), key, op, e.Value()))
	}
	return out
}
