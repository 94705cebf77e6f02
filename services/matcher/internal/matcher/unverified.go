package matcher

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// The match seal (events.HeaderMatchSeal): a match a claim carries is
// sent by a recovery only if the matchers' own keys verify its seal
// (Config.MatchSealKeyFile). One they do not verify (unverified), with
// no record behind it, is undone, or, decided published already, left
// to a matcher that can verify it: never sent from here. The frontends
// may write claims; they hold no such key.

// sealed reports whether the match claim carries may be taken: sealed by
// one of the matchers' keys, or carried where they have none. One that
// is not (unverified) is counted, and the first logged.
func (rc *recoverer) sealed(matchID string, claim events.ClaimRead) bool {
	if rc.matchSeals == nil || claim.SealedBy(rc.matchSeals) {
		return true
	}
	rc.unverified.Inc()
	rc.unverifiedOnce.Do(func() {
		rc.log.Warn("a claim carries a match whose seal does not verify with this matcher's -match-seal-key-file: "+
			"a matcher with other keys (or none) made it, or another writer of claims did; it is read from its record, "+
			"or, with none, never sent from here: undone if undecided, left to a matcher that can verify it if decided published "+
			"(logged once, counted in quickmatch_matcher_unverified_matches_total)",
			"match_id", matchID, "sealed", claim.MatchSeal != "")
	})
	return false
}

// errUnverified: the claim carries a match whose seal does not verify,
// and the match has no record (matchOf).
var errUnverified = errors.New("carries a match whose seal does not verify")

// settleUnverified settles match matchID, whose claim of key, stored at
// created, carries m unverified (errUnverified): made by no matcher
// holding this one's keys (a matcher with other keys or none, as an
// older release's during an upgrade, or another writer of claims, as a
// compromised frontend), so it is never sent from here.
//
// Undecided, it waits staleClaim from created, as a dead matcher's
// partial claims do (not if stored before the runner took the shard:
// leftByOwner), so that a matcher still committing it (during an
// upgrade) decides it first; then it is decided undone and its claims
// are given back, so that its tickets are matched again rather than held
// by a match no one sends. Only claims matchID's owner holds are given
// back (Claims.Release), whatever tickets m names: nothing of m but the
// keys it names is trusted.
//
// Decided published (by a matcher: only matchers write decisions), it
// is never undone, and its ticket is decided (recovered), as one of a
// match sent is. Not sent yet (its matcher died between its decision and
// its send), only a matcher that can verify it may send it: m may have
// been written over by another writer of claims, and giving back claims
// it names could free a ticket the match holds. That one is logged at
// error; the frontend that follows the ticket publishes it again while
// its match is unsent (events.Decisions.UnsentPast), once a duplicate
// window, for a matcher that can verify it. Kept in its pool instead
// (undecided), the ticket was paired with its partners again at once,
// its claim and the decision read every few milliseconds, for as long
// as the claim lived (review R2).
func (rc *recoverer) settleUnverified(ctx context.Context, matchID, key string, m events.Match, created time.Time) recovery {
	decision, err := rc.decisions.Decided(ctx, matchID)
	if err != nil {
		return undecided
	}
	if decision == "" {
		if rc.now().Sub(created) < staleClaim && !rc.leftByOwner(m, created) {
			return undecided
		}
		if decision, _, err = rc.decisions.Decide(ctx, matchID, events.DecisionUndone); err != nil {
			return undecided
		}
	}
	if decision == events.DecisionPublished {
		sent, err := rc.decisions.Sent(ctx, matchID)
		switch {
		case err != nil:
			return undecided
		case sent:
			return recovered
		}
		rc.log.Error("a match decided published whose claim carries it unverified was never sent: "+
			"only a matcher holding the key that sealed it can send it (check every matcher's -match-seal-key-file)",
			"match_id", matchID, "ticket_id", key)
		return recovered
	}
	rc.spent.put(matchID, rc.now())
	keys := m.ClaimKeys()
	if !slices.Contains(keys, key) {
		keys = append(keys, key)
	}
	if err := rc.claims.Release(ctx, keys, events.MatchOwner(matchID)); err != nil {
		rc.log.Error("give back the claims of a match carried unverified; will retry", "match_id", matchID, "err", err)
		return undecided
	}
	rc.log.Warn("match carried unverified undone", "match_id", matchID, "claims", len(keys))
	return released
}
