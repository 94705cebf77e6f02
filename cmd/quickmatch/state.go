package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Reads of the deployment's state, where the services keep it. Each
// returns what is stored, or nothing (found false) for a key that is not
// there: a record past its bucket's TTL is as gone as one never written.

// kvGet reads key of bucket; found is false when it is not there.
func (s *session) kvGet(ctx context.Context, bucket, key string) (value []byte, found bool, err error) {
	kv, err := s.js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, false, fmt.Errorf("bucket %s: %w", bucket, err)
	}
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s in bucket %s: %w", key, bucket, err)
	}
	return e.Value(), true, nil
}

// ticketRecord is the frontend's record of a ticket it took over HTTP,
// as the tickets bucket stores it (services/frontend/internal/tickets:
// storedRecord). A ticket published on NATS has none.
type ticketRecord struct {
	Ticket events.Ticket `json:"ticket"`
	Region string        `json:"region"`
	Tier   string        `json:"tier"`
}

// record reads a ticket's frontend record, nil if there is none.
func (s *session) record(ctx context.Context, ticketID string) (*ticketRecord, error) {
	b, found, err := s.kvGet(ctx, s.subj.TicketsBucket(), ticketID)
	if err != nil || !found {
		return nil, err
	}
	var r ticketRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("record of ticket %s: %w", ticketID, err)
	}
	return &r, nil
}

// boundPlayers are the players a ticket id is bound to in the players
// bucket (events.Players binds an id to its ticket's players, under
// "ticket.<id>", when the ticket is first taken in), nil if none.
func (s *session) boundPlayers(ctx context.Context, ticketID string) ([]string, error) {
	b, found, err := s.kvGet(ctx, s.subj.PlayersBucket(), "ticket."+ticketID)
	if err != nil || !found {
		return nil, err
	}
	var players []string
	if err := json.Unmarshal(b, &players); err != nil {
		return nil, fmt.Errorf("players of ticket %s: %w", ticketID, err)
	}
	return players, nil
}

// live reads a player's live ticket (events.LiveTicket), nil if none.
func (s *session) live(ctx context.Context, player string) (*events.LiveTicket, error) {
	b, found, err := s.kvGet(ctx, s.subj.PlayersBucket(), player)
	if err != nil || !found {
		return nil, err
	}
	var lt events.LiveTicket
	if err := json.Unmarshal(b, &lt); err != nil {
		return nil, fmt.Errorf("live ticket of %s: %w", player, err)
	}
	return &lt, nil
}

// results are every result the RESULTS stream keeps for player (the
// last 8, of the last 2 hours), oldest first. Each is read by a direct
// get of the next message on the player's subject: a handful of round
// trips, and no consumer left behind.
func (s *session) results(ctx context.Context, player string) ([]events.Result, error) {
	stream, err := s.js.Stream(ctx, s.subj.ResultsStream())
	if err != nil {
		return nil, fmt.Errorf("results stream: %w", err)
	}
	subject := s.subj.Result(player)
	var out []events.Result
	for seq := uint64(1); ; {
		raw, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("results of %s: %w", player, err)
		}
		seq = raw.Sequence + 1
		r, err := events.DecodeResult(raw.Data)
		if err != nil {
			return nil, fmt.Errorf("result %d of %s: %w", raw.Sequence, player, err)
		}
		out = append(out, r)
	}
}

// claim is a ticket's claim (who holds it, "" for nobody, and the match
// it carries) and whether its outcome was told (events.Claims.Told; a
// match's results are its own).
func (s *session) claim(ctx context.Context, ticketID string) (c events.ClaimRead, told bool, err error) {
	claims, err := s.claimsBucket(ctx)
	if err != nil {
		return c, false, err
	}
	if c, err = claims.Read(ctx, ticketID); err != nil || c.Owner == "" {
		return c, false, err
	}
	told, err = claims.Told(ctx, ticketID, c.Owner)
	return c, told, err
}

// carriedMatch is the match a ticket's claim carries (events.HeaderMatch),
// nil if the claim is not a match's or carries none (made by a matcher of
// an older release).
func carriedMatch(ticketID string, c events.ClaimRead) (*events.Match, error) {
	if _, isMatch := events.OwnerMatchID(c.Owner); !isMatch || c.Match == nil {
		return nil, nil
	}
	m, err := decodeMatchRecord(c.Match)
	if err != nil {
		return nil, fmt.Errorf("match in the claim of ticket %s: %w", ticketID, err)
	}
	return &m, nil
}

// owner is who holds a ticket's claim, "" for nobody.
func (s *session) owner(ctx context.Context, ticketID string) (string, error) {
	claims, err := s.claimsBucket(ctx)
	if err != nil {
		return "", err
	}
	return claims.Owner(ctx, ticketID)
}

// claimsBucket is the claims bucket, bound once per session: a list of
// dead letters reads many claims.
func (s *session) claimsBucket(ctx context.Context) (*events.Claims, error) {
	if s.claims == nil {
		claims, err := events.NewClaims(ctx, s.js, s.subj)
		if err != nil {
			return nil, err
		}
		s.claims = claims
	}
	return s.claims, nil
}

// standing is where a ticket stands: the highest-ranked of its results
// (events.Status.Rank), or what its claim decides when that ranks higher
// (the claimer's result is not out yet, or aged out of RESULTS), or
// queued when nothing was decided.
func standing(results []events.Result, owner string) events.Status {
	best := events.Status("")
	for _, r := range results {
		if r.Status.Rank() > best.Rank() {
			best = r.Status
		}
	}
	if owner != "" && events.OwnerStatus(owner).Rank() > best.Rank() {
		best = events.OwnerStatus(owner)
	}
	if best == "" {
		best = events.StatusQueued
	}
	return best
}
