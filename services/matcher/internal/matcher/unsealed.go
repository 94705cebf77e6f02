package matcher

import (
	"context"
	"errors"
	"slices"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// The match seal (events.HeaderMatchSeal): a match a claim carries is
// sent by a recovery only if the matchers' own keys verify its seal
// (Config.MatchSealKeyFile), and one that does not verify, with no
// record behind it, is undone, never sent. The frontends may write
// claims; they hold no such key.

// sealed reports whether the match claim carries may be taken: sealed by
// one of the matchers' keys, or carried where they have none. One that
// is not is counted, and the first logged.
func (rc *recoverer) sealed(matchID string, claim events.ClaimRead) bool {
	if rc.matchSeals == nil || claim.SealedBy(rc.matchSeals) {
		return true
	}
	rc.unsealed.Inc()
	rc.unsealedOnce.Do(func() {
		rc.log.Warn("a claim carries a match whose seal does not verify with this matcher's -match-seal-key-file: "+
			"a matcher with other keys (or none) made it, or another writer of claims did; it is read from its record, "+
			"or undone and never sent (logged once, counted in quickmatch_matcher_unsealed_matches_total)",
			"match_id", matchID, "sealed", claim.MatchSeal != "")
	})
	return false
}

// errUnsealed: the claim carries a match whose seal does not verify, and
// the match has no record (matchOf).
var errUnsealed = errors.New("carries a match whose seal does not verify")

// undoUnsealed settles match matchID, whose claim of key carries m
// unsealed (errUnsealed): made by no matcher holding this one's keys (a
// matcher with other keys or none, as an older release's during an
// upgrade, or another writer of claims, as a compromised frontend), so
// it is never sent. It is decided undone, unless decided already, and
// its claims are given back, as a dead matcher's partial claims are, so
// that its tickets are matched again rather than held by a match no one
// sends; its own matcher, if it lives and is still committing, follows
// the decision. Decided published (by a matcher that could read it, its
// claim since written over), it is left to those that can read it. Only
// claims matchID's owner holds are given back (Claims.Release), whatever
// tickets m names: m.MatchID is not trusted.
func (rc *recoverer) undoUnsealed(ctx context.Context, matchID, key string, m events.Match) recovery {
	decision, _, err := rc.decisions.Decide(ctx, matchID, events.DecisionUndone)
	switch {
	case err != nil:
		return undecided
	case decision != events.DecisionUndone:
		return recovered
	}
	rc.spent.put(matchID, rc.now())
	keys := m.ClaimKeys()
	if !slices.Contains(keys, key) {
		keys = append(keys, key)
	}
	if err := rc.claims.Release(ctx, keys, events.MatchOwner(matchID)); err != nil {
		rc.log.Error("give back the claims of a match carried unsealed; will retry", "match_id", matchID, "err", err)
		return undecided
	}
	rc.log.Warn("match carried unsealed undone", "match_id", matchID, "claims", len(keys))
	return released
}
