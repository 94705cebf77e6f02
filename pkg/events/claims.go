package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Claims decide the one outcome of every ticket. The claims bucket holds a
// key per ticket id; the first writer creates it (compare-and-set on "no
// such key") and every later writer learns who won. A matcher claims the
// tickets of a match before publishing it; the frontend claims a ticket to
// cancel it; a matcher claims a ticket to expire it. So a ticket is in at
// most one match, and a cancelled ticket is never matched, however the
// messages race or are redelivered.
type Claims struct {
	kv jetstream.KeyValue
	// pub publishes the results Tell tells.
	pub *Publisher
}

// Claim owners other than a match.
const (
	OwnerCancelled  = "cancelled"
	OwnerExpired    = "expired"
	OwnerSuperseded = "superseded"
	OwnerFailed     = "failed"
	ownerMatchPre   = "match:"
)

// MatchOwner is the owner a match claims its tickets with.
func MatchOwner(matchID string) string { return ownerMatchPre + matchID }

// OwnerMatchID returns the match id of a match owner.
func OwnerMatchID(owner string) (string, bool) { return strings.CutPrefix(owner, ownerMatchPre) }

// NewClaims binds to the provisioned claims bucket.
func NewClaims(ctx context.Context, js jetstream.JetStream, subj Subjects) (*Claims, error) {
	kv, err := BindLeaderGets(ctx, js, subj.ClaimsBucket())
	if err != nil {
		return nil, fmt.Errorf("claims bucket: %w", err)
	}
	return &Claims{kv: kv, pub: NewPublisher(js, subj)}, nil
}

// Claim records owner as the outcome of ticketID. It returns true if owner
// holds the claim now (it won, or had won before: claiming is idempotent),
// and otherwise the owner that won.
//
// A claim found taken may be given back (a match undone) before its owner
// is read: nobody holds it then, and the ticket is still undecided, so
// the claim is tried again rather than reported lost to nobody.
func (c *Claims) Claim(ctx context.Context, ticketID, owner string) (bool, string, error) {
	return c.claim(ctx, ticketID, owner, nil, "")
}

// claim is Claim, the claim made carrying match (a match's encoding:
// HeaderMatch), sealed by seal, if set.
func (c *Claims) claim(ctx context.Context, ticketID, owner string, match []byte, seal string) (bool, string, error) {
	for range claimAttempts {
		cctx, cancel := context.WithTimeout(ctx, ClaimCallTimeout)
		err := c.create(cctx, ticketID, owner, match, seal)
		cancel()
		if err == nil {
			return true, owner, nil
		}
		if !keyExists(err) {
			return false, "", fmt.Errorf("claim ticket %s: %w", ticketID, err)
		}
		cur, err := c.Owner(ctx, ticketID)
		if err != nil {
			return false, "", err
		}
		if cur != "" {
			return cur == owner, cur, nil
		}
	}
	return false, "", fmt.Errorf("claim ticket %s: given back each of %d times before its owner was read", ticketID, claimAttempts)
}

// claimAttempts bounds Claim's retries of a claim given back under it;
// past them the caller sees an error and tries again later.
const claimAttempts = 3

// Owner returns who holds the claim of ticketID, or "" if nobody does.
func (c *Claims) Owner(ctx context.Context, ticketID string) (string, error) {
	e, err := c.get(ctx, ticketID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("claim of ticket %s: %w", ticketID, err)
	}
	return string(e.Value()), nil
}

// ClaimAll claims every ticket for owner, or none: if another owner holds
// any of them, the claims made by this call are given back and the tickets
// lost are returned with their owners. On an error with none lost, the
// claims made stay owner's, undecided (settleGroup says why).
func (c *Claims) ClaimAll(ctx context.Context, ticketIDs []string, owner string) (map[string]string, error) {
	// The claims go out together: one round trip for the match, not one
	// per ticket.
	answers := make([]claimAnswer, len(ticketIDs))
	var wg sync.WaitGroup
	for i, id := range ticketIDs {
		wg.Go(func() {
			won, cur, err := c.Claim(ctx, id, owner)
			answers[i] = claimAnswer{won, cur, err}
		})
	}
	wg.Wait()
	return c.settleGroup(ctx, ClaimGroup{IDs: ticketIDs, Owner: owner}, answers)
}

// Supersede moves the claim of ticketID from owner to OwnerSuperseded: a
// match that claimed a ticket and then found it was no longer its
// player's live ticket ends it so, once the match is decided undone (see
// [Players]). A claim held by
// anyone else is left as it is. It reports whether the ticket is
// superseded now.
func (c *Claims) Supersede(ctx context.Context, ticketID, owner string) (bool, error) {
	for {
		e, err := c.get(ctx, ticketID)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			won, _, err := c.Claim(ctx, ticketID, OwnerSuperseded)
			return won, err
		}
		if err != nil {
			return false, fmt.Errorf("claim of ticket %s: %w", ticketID, err)
		}
		switch string(e.Value()) {
		case OwnerSuperseded:
			return true, nil
		case owner:
		default:
			return false, nil
		}
		cctx, cancel := context.WithTimeout(ctx, ClaimCallTimeout)
		_, err = c.kv.Update(cctx, ticketID, []byte(OwnerSuperseded), e.Revision())
		cancel()
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("supersede ticket %s: %w", ticketID, err)
		}
		return true, nil
	}
}

// Release gives back the claims of owner on ids, those still owner's (a
// match that will not be published after all, or one requeued). A claim
// gone, or held by another owner, is left as it is. The error (each
// failure, joined) says that a claim still owner's may not have been
// given back: its key could not be read or deleted (a claim changed
// under the delete is read again). Such a claim stays behind, and the
// ticket ends as that owner's outcome would say: a caller that gives the
// ticket a new life after the release (the allocator's requeue) must not
// while it fails.
func (c *Claims) Release(ctx context.Context, ids []string, owner string) error {
	// Side by side, as ClaimAll: one slow claim delays no other.
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { errs[i] = c.release(ctx, id, owner) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// release gives back the claim of id if owner holds it (Release).
func (c *Claims) release(ctx context.Context, id, owner string) error {
	for range claimAttempts {
		e, err := c.get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("release claim of ticket %s: %w", id, err)
		}
		if string(e.Value()) != owner {
			return nil
		}
		cctx, cancel := context.WithTimeout(ctx, ClaimCallTimeout)
		err = c.kv.Delete(cctx, id, jetstream.LastRevision(e.Revision()))
		cancel()
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // written since it was read: whose is it now?
		}
		if err != nil {
			return fmt.Errorf("release claim of ticket %s: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("release claim of ticket %s: changed under each of %d deletes", id, claimAttempts)
}

// get reads key, within ClaimCallTimeout.
func (c *Claims) get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, ClaimCallTimeout)
	defer cancel()
	return c.kv.Get(ctx, key)
}

// toldKey is the key that records that the outcome of ticketID's claim
// was told (Claims.MarkTold). A ticket id has no dot, and a backfill
// request's claim key has its own prefix (backfillClaimPrefix), so it is
// never a claim's key.
func toldKey(ticketID string) string { return "told." + ticketID }

// MarkTold records that the players of ticketID were told the outcome
// of its claim owner, not a match's (their results are stored). Only
// those claims are never given back or moved, so the mark stays true; a
// match's results are the match's to record (Decisions.MarkSent). It
// lives in the claims bucket, written after the claim, so it outlives it.
func (c *Claims) MarkTold(ctx context.Context, ticketID, owner string) error {
	cctx, cancel := context.WithTimeout(ctx, ClaimCallTimeout)
	defer cancel()
	if _, err := c.kv.Put(cctx, toldKey(ticketID), []byte(owner)); err != nil {
		return fmt.Errorf("mark the outcome of ticket %s told: %w", ticketID, err)
	}
	return nil
}

// Told reports whether the outcome of ticketID's claim owner was told
// (MarkTold).
func (c *Claims) Told(ctx context.Context, ticketID, owner string) (bool, error) {
	e, err := c.get(ctx, toldKey(ticketID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("whether the outcome of ticket %s was told: %w", ticketID, err)
	}
	return string(e.Value()) == owner, nil
}

// Telling is the outcome of one ticket's claim, to tell its players
// (Claims.Tell).
type Telling struct {
	// Ticket is the ticket told: its id and players, and for a
	// superseded one also its shard and mode (its cancel notices).
	Ticket LiveTicket
	// Owner holds the ticket's claim.
	Owner string
	// Reason, if set, is told instead of ClaimedResult's (not for a
	// superseded ticket: see Newer).
	Reason string
	// Newer is the ticket that superseded it, if known: its reason names it.
	Newer string
}

// results are the results that tell tl's players.
func (tl Telling) results() []Result {
	rs := make([]Result, len(tl.Ticket.Players))
	for i, pl := range tl.Ticket.Players {
		rs[i] = ClaimedResult(tl.Ticket.TicketID, pl, tl.Owner)
		if tl.Owner == OwnerSuperseded {
			rs[i].Reason = supersededReason(tl.Newer)
		} else {
			rs[i].Reason = cmp.Or(tl.Reason, rs[i].Reason)
		}
	}
	return rs
}

// Tell tells the players of a ticket the outcome its claim owner decided
// (cancelled, expired, superseded, failed), unless they were told
// already (Told), and records that they were (MarkTold). It is the one
// way every service tells an outcome that is not a match: callers call it
// with whatever owner they found, and a match's (its results are its
// deciders', Decisions) or none ("": given back, nothing decided) tells
// nothing. A superseded ticket is told through superseded (its players,
// and the cancel notices to its shards: Publisher.TellSuperseded), or
// with its results alone if superseded is nil.
//
// An outcome claimed is always published: the claimer calls it, and so
// does whoever meets the claim (a matcher's expiry or commit that lost
// it, a Take, a frontend's cancel), for the claimer may have failed to
// publish (NATS away) or died in between; until one of them succeeds,
// the ticket's message is not acked, so someone meets the claim again. A
// repeat within DuplicateWindow is stored once (ResultMsgID); the mark
// keeps a later one from being heard twice, but for a teller that fails
// to mark.
func (c *Claims) Tell(ctx context.Context, tl Telling, superseded SupersededFunc) error {
	id := tl.Ticket.TicketID
	if _, isMatch := OwnerMatchID(tl.Owner); isMatch || tl.Owner == "" {
		return nil
	}
	told, err := c.Told(ctx, id, tl.Owner)
	if err != nil || told {
		return err
	}
	// The publish has a deadline of its own, as each claim call does: a
	// lost ack (a cut route) would otherwise hold the teller, and the
	// ticket whose message waits on it, until its caller's context ends,
	// which for a cancel or a Take is not before the connection heals.
	// Failed, the telling is tried again by whoever meets the claim next.
	pctx, cancel := context.WithTimeout(ctx, ClaimCallTimeout)
	defer cancel()
	if tl.Owner == OwnerSuperseded && superseded != nil {
		err = superseded(pctx, tl.Ticket, tl.Newer)
	} else {
		err = c.pub.Results(pctx, tl.results())
	}
	if err != nil {
		return fmt.Errorf("tell the players of ticket %s: %w", id, err)
	}
	return c.MarkTold(ctx, id, tl.Owner)
}
