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
	kv, err := js.KeyValue(ctx, subj.ClaimsBucket())
	if err != nil {
		return nil, fmt.Errorf("claims bucket: %w", err)
	}
	return &Claims{kv: kv}, nil
}

// Claim records owner as the outcome of ticketID. It returns true if owner
// holds the claim now (it won, or had won before: claiming is idempotent),
// and otherwise the owner that won.
//
// A claim found taken may be given back (a match undone) before its owner
// is read: nobody holds it then, and the ticket is still undecided, so
// the claim is tried again rather than reported lost to nobody.
func (c *Claims) Claim(ctx context.Context, ticketID, owner string) (bool, string, error) {
	for range claimAttempts {
		_, err := c.kv.Create(ctx, ticketID, []byte(owner))
		if err == nil {
			return true, owner, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
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
	e, err := c.kv.Get(ctx, ticketID)
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
// lost are returned with their owners.
func (c *Claims) ClaimAll(ctx context.Context, ticketIDs []string, owner string) (map[string]string, error) {
	// The claims go out together: one round trip for the match, not one
	// per ticket.
	type answer struct {
		won bool
		cur string
		err error
	}
	answers := make([]answer, len(ticketIDs))
	var wg sync.WaitGroup
	for i, id := range ticketIDs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			won, cur, err := c.Claim(ctx, id, owner)
			answers[i] = answer{won, cur, err}
		}()
	}
	wg.Wait()
	lost := map[string]string{}
	var made []string
	var firstErr error
	for i, a := range answers {
		switch {
		case a.err != nil:
			firstErr = cmp.Or(firstErr, a.err)
		case a.won:
			made = append(made, ticketIDs[i])
		default:
			lost[ticketIDs[i]] = a.cur
		}
	}
	if firstErr != nil || len(lost) > 0 {
		// A claim this cannot give back stays behind as a partial claim
		// of a match that is not decided: whoever meets it follows the
		// match, and, once it is old enough to count as a dead
		// matcher's, undoes it (the matcher's recoverMatch). So the
		// failure is not the caller's to handle.
		_ = c.Release(ctx, made, owner)
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return lost, nil
}

// Supersede moves the claim of ticketID from owner to OwnerSuperseded: a
// match that claimed a ticket and then found it was no longer its
// player's live ticket ends it so, once the match is decided undone (see
// [Players]). A claim held by
// anyone else is left as it is. It reports whether the ticket is
// superseded now.
func (c *Claims) Supersede(ctx context.Context, ticketID, owner string) (bool, error) {
	for {
		e, err := c.kv.Get(ctx, ticketID)
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
		_, err = c.kv.Update(ctx, ticketID, []byte(OwnerSuperseded), e.Revision())
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
	var errs []error
	for _, id := range ids {
		if err := c.release(ctx, id, owner); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// release gives back the claim of id if owner holds it (Release).
func (c *Claims) release(ctx context.Context, id, owner string) error {
	for range claimAttempts {
		e, err := c.kv.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("release claim of ticket %s: %w", id, err)
		}
		if string(e.Value()) != owner {
			return nil
		}
		err = c.kv.Delete(ctx, id, jetstream.LastRevision(e.Revision()))
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
