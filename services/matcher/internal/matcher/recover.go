package matcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/singleflight"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// recoverer settles a match found owning a ticket's claim (recoverMatch):
// the matcher that formed it may have died between claiming and
// publishing, or be slow.
type recoverer struct {
	*matchState
	// now is the worker's clock (Worker.clock).
	now func() time.Time
	log *slog.Logger
	// shard is its runner's shard, and since when the runner has held
	// it: a match of the shard stored before then was formed by an owner
	// that has lost it (staleClaim).
	shard events.Shard
	since time.Time
	// abandoned are the runner's own matches whose commit gave up; spent,
	// the ids of matches decided undone (abandoned.go).
	abandoned *abandoned
	spent     *spent
	// recovering makes the recoveries of one match running at once
	// share its send (recoverMatch): the commits of a batch, the
	// expiries of a sweep, a refused ticket's claim and a backfill's
	// fill that meet its claims each read it unsent, and each sent it,
	// its players' results and its notices again: stored once, heard
	// by every frontend and allocator subscription again.
	recovering singleflight.Group
}

// recovery is what recoverMatch made of a match.
type recovery int

const (
	recovered recovery = iota // the match is out: its tickets are decided
	released                  // a dead partial match was undone: tickets are free
	undecided                 // undecided yet: look again later
)

// staleClaim is how old a match's claims (or its record: matchOf) must
// be before its partial claims count as left by a dead matcher (or a
// commit that gave up: NATS refused one claim, with no leader). A live
// commit has ended by then: its claims and decision are bounded by the
// publish timeout (5 s by default), and were one still running, the
// decision arbitrates (events.Decisions), so a look too early costs a
// needless undo, never a second outcome. Its tickets wait this long for
// the claims to be undone: 30 s left a burst of them past their max wait
// in the chaos runs.
//
// A match of the recoverer's own shard stored before its runner took
// the shard (recoverer.since) is not waited for: the owner that formed
// it lost the shard, and the tickets it held are this runner's to match.
// Waiting cost them staleClaim at the worst moment, just after the move
// (chaos S63 and S64: a ticket claimed by a cut-off owner whose other
// claim failed, expired past its 20 s max wait). That owner's commit, if
// still running, follows the decision (events.Decisions). Nor is one of
// the runner's own whose commit gave up (abandoned.go; chaos S70: two
// tickets held so past their max wait). Nor is one with a ticket another
// owner holds: its commit, meeting that owner, lost the claim and gave
// back (or failed to give back: review R3, where they waited out
// staleClaim) the claims it made. Deciding it undone costs a needless
// undo only if that owner gave the claim back while the commit was
// still claiming (it then wins it, and follows the decision).
const staleClaim = 10 * time.Second

// recoverMatch settles a match found owning a ticket's claim. The match
// gets one decision (events.Decisions): it is read first, and made if
// there is none yet (decide says how); whoever decides second follows the
// first. Then the decision is followed: published, it is published unless
// it was sent already (matchState.sendOnce: a copy of a ticket may meet the
// claim long after the match went out, past the duplicate window that
// would have stored a repeat once), or, with its claims partly gone (the
// allocator requeued it), the rest are given back as before
// (followPublished); undone, its stale tickets' claims
// move to superseded and the others are given back (undoStale), and it
// counts as released. The match is read from the claim of key, which the
// caller found matchID's (matchOf).
//
// The recoveries of one match running at once wait for the first
// (recovering), and take its outcome if it is recovered: the match is
// out, whichever of its claims led there. Any other outcome is the first
// caller's key's (its claim moved, or unread; released, the claims its
// read named), not theirs: each then runs its own, which finds the
// match sent if it was.
func (rc *recoverer) recoverMatch(ctx context.Context, matchID, key string) recovery {
	ran := false
	v, _, _ := rc.recovering.Do(matchID, func() (any, error) {
		ran = true
		return rc.recoverOnce(ctx, matchID, key), nil
	})
	if r := v.(recovery); ran || r == recovered {
		return r
	}
	return rc.recoverOnce(ctx, matchID, key)
}

// recoverOnce is recoverMatch, for one caller.
func (rc *recoverer) recoverOnce(ctx context.Context, matchID, key string) recovery {
	cctx, cancel := context.WithTimeout(ctx, rc.timeout)
	defer cancel()
	m, created, found, err := rc.matchOf(cctx, matchID, key)
	switch {
	case errors.Is(err, errUnverified):
		return rc.settleUnverified(cctx, matchID, key, m, created)
	case err != nil:
		return undecided
	case !found:
		return recovered
	}
	// Below, the match is named by the owner of its claims (matchID);
	// only undoStale goes by the match's own m.MatchID. A commit claims
	// every ticket under its match's own id.
	decision, err := rc.decisions.Decided(cctx, matchID)
	if err != nil {
		return undecided
	}
	all, taken, err := rc.claimsOf(cctx, matchID, m)
	if err != nil {
		return undecided
	}
	var stale map[string]string
	if decision == "" {
		if decision, stale, err = rc.decide(cctx, matchID, m, created, all, taken); err != nil || decision == "" {
			return undecided
		}
		if decision == events.DecisionPublished && !all {
			// Decided published by another commit of the same id since
			// the claims were read (every claim taken again): read them
			// again, or followPublished would take
			// that match's claims for a requeued one's and give them
			// back (review R3).
			if all, err = rc.allClaimed(cctx, matchID, m); err != nil {
				return undecided
			}
		}
	}
	if decision == events.DecisionUndone {
		rc.spent.put(matchID, rc.now()) // the same tickets formed again get a new id
	}
	if decision == events.DecisionPublished {
		return rc.followPublished(ctx, matchID, m, created, all)
	}
	if len(stale) == 0 {
		// Following a decision found made (or lost to one): which
		// tickets are stale? As the commit does when it follows one.
		// (Stale only grows: a ticket that stopped being live never is
		// again.)
		if stale, err = rc.players.Stale(cctx, m.TicketPlayers()); err != nil {
			return undecided
		}
	}
	if err := rc.undoStale(ctx, m, stale); err != nil {
		rc.log.Error("undo a match decided undone; will retry", "match_id", matchID, "err", err)
		return undecided
	}
	// Its age, and whether another owner holds one of its tickets, say
	// why a match with no stale ticket was: past
	// staleClaim, or younger, with a claim taken, stored by the shard's
	// last owner or given up by the runner's own commit. A claim taken
	// is two shards' matches contending for a visitor, as they do every
	// day (chaos S74: 39 of 46 such undos within a second of the
	// match), not a matcher that died: information, not a warning.
	level := slog.LevelWarn
	if taken {
		level = slog.LevelInfo
	}
	rc.log.Log(ctx, level, "match of another matcher undone", "match_id", matchID, "stale", len(stale),
		"age", rc.now().Sub(created).Round(time.Millisecond), "claim_taken", taken)
	return released
}

// matchOf reads match matchID as the claim of key carries it
// (events.HeaderMatch), with when the claim was stored, or, from a claim
// that carries none (made by a matcher of an older release, or through a
// bucket that stores no headers), none that decodes, or, with match seal
// keys, none whose seal verifies (sealed), the match's record and when
// it was stored: both come before a match's first decision, and
// staleClaim times either. found is false for a match to count decided:
// its claim of key carries none and it has no record (formed before
// records were kept, or expired), or what it has does not decode. A
// claim of key no longer matchID's is errClaimMoved: the caller found it
// matchID's, and reads it again. A match carried unverified with no
// record is errUnverified, with m as the claim carries it and when the
// claim was stored (settleUnverified), never to be sent.
func (rc *recoverer) matchOf(ctx context.Context, matchID, key string) (m events.Match, created time.Time, found bool, err error) {
	claim, err := rc.claims.Read(ctx, key)
	switch {
	case err != nil:
		return m, created, false, err
	case claim.Owner != events.MatchOwner(matchID):
		return m, created, false, fmt.Errorf("claim of %s: %w", key, errClaimMoved)
	}
	carried := claim.Match != nil
	sealed := !carried || rc.sealed(matchID, claim)
	if carried && sealed && json.Unmarshal(claim.Match, &m) == nil {
		return m, claim.Created, true, nil
	}
	m = events.Match{} // nothing of a carried match that did not decode
	e, err := rc.matches.Get(ctx, matchID)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound) && !sealed:
		if json.Unmarshal(claim.Match, &m) != nil {
			m = events.Match{} // the claim of key alone is given back
		}
		return m, claim.Created, false, errUnverified
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return m, created, false, nil
	case err != nil:
		return m, created, false, err
	}
	return m, e.Created(), json.Unmarshal(e.Value(), &m) == nil, nil
}

// errClaimMoved: the claim its reader found a match's is no longer.
var errClaimMoved = errors.New("no longer the match's")

// allClaimed reports whether match matchID (m) holds the claim of every
// one of its tickets, and of the backfill request it fills, if any: a
// matcher that died with the tickets claimed but not the request must not
// see its match published while another fills the request.
func (rc *recoverer) allClaimed(ctx context.Context, matchID string, m events.Match) (bool, error) {
	all, _, err := rc.claimsOf(ctx, matchID, m)
	return all, err
}

// claimsOf reads the claims of match matchID (m): whether it holds all of
// them (allClaimed), and whether another owner holds one (taken).
func (rc *recoverer) claimsOf(ctx context.Context, matchID string, m events.Match) (all, taken bool, err error) {
	owner := events.MatchOwner(matchID)
	all = true
	for _, key := range m.ClaimKeys() {
		cur, err := rc.claims.Owner(ctx, key)
		if err != nil {
			return false, false, err
		}
		all = all && cur == owner
		taken = taken || cur != "" && cur != owner
	}
	return all, taken, nil
}

// decide makes the decision of match matchID (m), found undecided: with
// every ticket claimed by it (all), m is checked as its commit would (each
// ticket still its players' live ticket?; stale are those that are not)
// and decided published, or undone if a ticket is stale; with only some
// claimed and stored longer than staleClaim ago (created), by the
// shard's last owner (leftByOwner), abandoned by the runner's own
// commit or with a ticket another owner holds (taken), it died claiming
// (or lost the shard, or gave up, or lost a claim), and is decided
// undone. Either way the decision is the one that stands
// (events.Decisions: another may have decided first). A decision "" with
// no error: too soon to tell.
func (rc *recoverer) decide(ctx context.Context, matchID string, m events.Match, created time.Time, all, taken bool) (events.Decision, map[string]string, error) {
	if all {
		// The matcher that formed it may have died (or stalled) before
		// its check that each ticket is still its players' live ticket:
		// check as its commit would have (events.Players).
		stale, err := rc.players.Stale(ctx, m.TicketPlayers())
		if err != nil {
			return "", nil, err
		}
		decision, _, err := rc.decisions.Decide(ctx, matchID, wanted(stale))
		return decision, stale, err
	}
	if rc.now().Sub(created) < staleClaim && !taken && !rc.leftByOwner(m, created) && !rc.abandoned.gaveUp(matchID) {
		return "", nil, nil
	}
	// Partial claims of a matcher that died claiming (or lost the
	// shard): decided undone before they are given back, so that
	// matcher, if it was only slow, follows instead of publishing.
	decision, _, err := rc.decisions.Decide(ctx, matchID, events.DecisionUndone)
	return decision, nil, err
}

// leftByOwner reports whether m, stored at created, is a match of the
// recoverer's shard stored before its runner took the shard: one the
// previous owner formed (staleClaim). created is the NATS server's
// clock and since the worker's: a skew makes a match stored just after
// the takeover look older, and costs it a needless undo.
func (rc *recoverer) leftByOwner(m events.Match, created time.Time) bool {
	return m.Region == rc.shard.Region && m.Tier == rc.shard.Tier && created.Before(rc.since)
}

// followPublished publishes match matchID (m), decided published, unless
// it was sent already; or, if it holds only some of its claims (all false),
// gives the rest back. A match it sends, its matcher died before sending
// (or stalls): the copies of its tickets are told to go, as that matcher
// would have told them.
func (rc *recoverer) followPublished(ctx context.Context, matchID string, m events.Match, created time.Time, all bool) recovery {
	if !all {
		// Published, then some of its claims given back: the allocator
		// found no server and requeued its tickets (as new messages), but
		// could not give back every claim. Its claims are the allocator's
		// to give back now; finish that once it had time to.
		if rc.now().Sub(created) < staleClaim {
			return undecided
		}
		rctx, cancel := context.WithTimeout(ctx, rc.timeout) // the first context served many round trips
		defer cancel()
		if err := rc.claims.Release(rctx, m.ClaimKeys(), events.MatchOwner(matchID)); err != nil {
			// Not released: a caller told so would claim the ticket
			// again, find it the match's still, and drop it as decided.
			rc.log.Error("release the claims of a requeued match; will retry", "match_id", matchID, "err", err)
			return undecided
		}
		rc.log.Warn("claims of a requeued match released", "match_id", matchID)
		return released
	}
	sent, err := rc.sendOnce(ctx, m)
	if err != nil {
		return undecided
	}
	if !sent {
		rc.log.Debug("match of another matcher found sent already", "match_id", matchID)
		return recovered
	}
	rc.sendMatchedNotices(ctx, m, recoveredNotices(matchID, m))
	rc.log.Info("match of another matcher published", "match_id", matchID)
	return recovered
}

// undoStale undoes a match decided undone for recoverMatch, as dropStale
// does for a commit (undoer): the stale tickets' claims move to superseded
// and their players are told, the other claims are given back (those of a
// dead matcher's partial claims, with no ticket stale: all of them). An
// error leaves the rest for the next try (a superseded claim stays
// superseded; a ticket whose players were not told is told when it comes
// back, by Take).
func (rc *recoverer) undoStale(ctx context.Context, m events.Match, stale map[string]string) error {
	cctx, cancel := context.WithTimeout(ctx, rc.timeout)
	defer cancel()
	var errs []error
	for _, t := range m.Tickets {
		live, gone := stale[t.TicketID]
		if !gone {
			continue
		}
		if err := rc.undo.supersede(cctx, m, t, live); err != nil {
			errs = append(errs, fmt.Errorf("supersede ticket %s: %w", t.TicketID, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// A claim not given back is not released: a caller told so would
	// claim the ticket again, find it m's still, and drop it as decided.
	return rc.undo.releaseFresh(cctx, m, stale)
}

// recoveredNotices are the matched notices of every ticket of match
// matchID (m), sent by the worker that recovered it: it cannot tell
// which tickets may have copies, so all are named. Each names its
// ticket's own tier; its own region only for a ticket from a neighbouring
// tier (offered within its region): another's may be a visitor from any.
func recoveredNotices(matchID string, m events.Match) []events.MatchedNotice {
	ns := make([]events.MatchedNotice, len(m.Tickets))
	for i, t := range m.Tickets {
		ns[i] = events.MatchedNotice{TicketID: t.TicketID, MatchID: matchID, HomeTier: m.Tier}
		if t.Tier != "" {
			ns[i].HomeRegion, ns[i].HomeTier = m.Region, t.Tier
		}
	}
	return ns
}
