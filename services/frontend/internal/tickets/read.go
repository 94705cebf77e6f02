package tickets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
)

// Get reports where a ticket stands, for a caller that owns it (anyone
// else gets ErrNotFound, as for an unknown id), as its Follower sees it.
func (s *Service) Get(ctx context.Context, caller identity.Caller, ticketID string) (View, error) {
	rec, err := s.RecordFor(ctx, caller, ticketID)
	if err != nil {
		return View{}, err
	}
	return s.View(ctx, rec, Follower(caller))
}

// Follower is the player whose results of a ticket caller c sees: a
// player its own, for each player of a party has a join token of its own
// (the allocator signs one per player, and one admits its player alone);
// the server role ("") the first player's.
func Follower(c identity.Caller) string {
	if c.Server {
		return ""
	}
	return c.PlayerID
}

// View is a stored record with its outcome so far as player sees it (""
// the first player; one not of the ticket gets ErrNotFound): Get for a
// caller that already holds the ticket's record (read once, ownership
// checked).
func (s *Service) View(ctx context.Context, rec Record, player string) (View, error) {
	players := rec.Ticket.Players()
	switch {
	case player == "":
		player = players[0]
	case !slices.Contains(players, player):
		return View{}, ErrNotFound
	}
	r, err := s.outcome(ctx, rec, player)
	if err != nil {
		return View{}, err
	}
	return ViewOf(rec, r), nil
}

// outcome is the most advanced result of a ticket for one of its players,
// read from JetStream. Usually it is the newest result on the player's
// subject; when that one is about another ticket of the player (a newer
// one), or there is none, OutcomeBehind says.
func (s *Service) outcome(ctx context.Context, rec Record, player string) (*events.Result, error) {
	id := rec.Ticket.TicketID
	raw, err := s.results.GetLastMsgForSubject(ctx, s.subj.Result(player))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		raw, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("result of ticket %s: %w", id, err)
	}
	var last uint64
	if raw != nil {
		if r, err := events.DecodeResult(raw.Data); err == nil && r.TicketID == id {
			return &r, nil
		}
		last = raw.Sequence
	}
	return s.OutcomeBehind(ctx, id, player, last)
}

// OutcomeBehind is the most advanced result of a ticket whose
// player's last result, at stream sequence last (0: the player has
// none), is another ticket's: nil while it has none. The ticket's claim
// says whether it has an outcome at all, and the player's stored results
// up to last (RESULTS keeps the last few per player) are read one by one
// with a subject-filtered get for the ticket's own; if they are gone
// too, the claim alone says what became of it. The results tracker's
// catch-up asks it (results.Outcomes) for the tickets a player's last
// result does not tell about.
func (s *Service) OutcomeBehind(ctx context.Context, id, player string, last uint64) (*events.Result, error) {
	owner, err := s.claims.Owner(ctx, id)
	if err != nil || owner == "" {
		return nil, err // no claim: it is still queued
	}
	subject := s.subj.Result(player)
	var best *events.Result
	for seq := uint64(1); last > 0; {
		m, err := s.results.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("results of ticket %s: %w", id, err)
		}
		if r, err := events.DecodeResult(m.Data); err == nil && r.TicketID == id && (best == nil || r.Status.Rank() >= best.Status.Rank()) {
			best = &r
		}
		if m.Sequence >= last {
			break // the newest, read by the caller
		}
		seq = m.Sequence + 1
	}
	if best != nil {
		return best, nil
	}
	// Gone from the stream (or not out yet): the claim alone says.
	claimed := events.ClaimedResult(id, player, owner)
	return &claimed, nil
}

// RecordFor returns the stored record of a ticket the caller owns;
// ErrNotFound for one it does not.
func (s *Service) RecordFor(ctx context.Context, caller identity.Caller, ticketID string) (Record, error) {
	rec, err := s.Record(ctx, ticketID)
	if err != nil {
		return Record{}, err
	}
	if !rec.OwnedBy(caller) {
		return Record{}, ErrNotFound
	}
	return rec, nil
}

// Record returns the stored record of a ticket, whoever asks.
func (s *Service) Record(ctx context.Context, ticketID string) (Record, error) {
	if ticketID == "" || len(ticketID) > 64 {
		return Record{}, ErrNotFound
	}
	// An answered ticket whose record is still being put (putLater): its
	// client follows it from the 202 on, while the bucket that failed
	// the put may fail reads as well.
	if rec, ok := s.unstoredRecord(ticketID); ok {
		return rec, nil
	}
	entry, err := s.kv.Get(ctx, ticketID)
	if errors.Is(err, jetstream.ErrKeyNotFound) && s.lateWrites.has(ticketID, s.now()) {
		// A direct get, answered by any replica: one behind a cut has
		// not got a record whose put the other two acked, and its client
		// following at once heard 404. The leader has every put acked;
		// not reached, the error (a 503) is the client's to retry, not a
		// 404, which ends its ticket for it.
		lctx, cancel := context.WithTimeout(ctx, events.ClaimCallTimeout)
		entry, err = s.leader.Get(lctx, ticketID)
		cancel()
	}
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("ticket %s: %w", ticketID, err)
	}
	var rec Record
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		return Record{}, fmt.Errorf("ticket %s record: %w", ticketID, err)
	}
	return rec, nil
}
