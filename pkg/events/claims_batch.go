package events

import (
	"cmp"
	"context"
	"fmt"
	"sync"
)

// ClaimGroup is tickets one owner claims all or none of (Claims.ClaimAll).
type ClaimGroup struct {
	IDs   []string
	Owner string
	// Match, if set, is the encoding of the match that claims them,
	// carried by each claim (HeaderMatch).
	Match []byte
	// MatchSeal, if set, seals Match (HeaderMatchSeal: Seals.SealMatch
	// of Owner and Match).
	MatchSeal string
}

// ClaimedGroup is what became of a ClaimGroup, as ClaimAll reports it:
// Lost, the tickets other owners hold, with those owners; or Err.
type ClaimedGroup struct {
	Lost map[string]string
	Err  error
}

// ClaimBatch claims each group as ClaimAll does (all or none, with the
// same outcomes), every group's claims sent together: one round trip for
// the batch when no ticket is claimed already. A ticket whose create is
// refused (claimed, or given back: its key deleted) goes the whole way
// of Claim, which reads its owner and tries again, before its group is
// settled. out[i] is groups[i]'s.
func (c *Claims) ClaimBatch(ctx context.Context, groups []ClaimGroup) []ClaimedGroup {
	var writes []KVWrite
	for _, g := range groups {
		for _, id := range g.IDs {
			writes = append(writes, KVWrite{Key: id, Value: []byte(g.Owner), Header: matchHeader(g.Match, g.MatchSeal)})
		}
	}
	cctx, cancel := context.WithTimeout(ctx, ClaimCallTimeout)
	errs := CreateAll(cctx, c.kv, writes)
	cancel()
	answers := make([]claimAnswer, len(writes))
	var wg sync.WaitGroup
	i := 0
	for _, g := range groups {
		for _, id := range g.IDs {
			k := i
			i++
			switch err := errs[k]; {
			case err == nil:
				answers[k] = claimAnswer{won: true, cur: g.Owner}
			case keyExists(err):
				wg.Go(func() {
					won, cur, err := c.claim(ctx, id, g.Owner, g.Match, g.MatchSeal)
					answers[k] = claimAnswer{won, cur, err}
				})
			default:
				answers[k] = claimAnswer{err: fmt.Errorf("claim ticket %s: %w", id, err)}
			}
		}
	}
	wg.Wait()
	out := make([]ClaimedGroup, len(groups))
	i = 0
	for gi, g := range groups {
		mine := answers[i : i+len(g.IDs)]
		i += len(g.IDs)
		wg.Go(func() {
			lost, err := c.settleGroup(ctx, g, mine)
			out[gi] = ClaimedGroup{Lost: lost, Err: err}
		})
	}
	wg.Wait()
	return out
}

// claimAnswer is the outcome of one ticket's claim (Claim's results).
type claimAnswer struct {
	won bool
	cur string
	err error
}

// settleGroup makes of g's answers (one per ticket) what ClaimAll
// returns: a claim lost gives back the claims made; an error keeps them,
// and wins over what was lost.
func (c *Claims) settleGroup(ctx context.Context, g ClaimGroup, answers []claimAnswer) (map[string]string, error) {
	lost := map[string]string{}
	var made []string
	var firstErr error
	for i, a := range answers {
		switch {
		case a.err != nil:
			firstErr = cmp.Or(firstErr, a.err)
		case a.won:
			made = append(made, g.IDs[i])
		default:
			lost[g.IDs[i]] = a.cur
		}
	}
	if len(lost) > 0 {
		// A claim this cannot give back stays behind as a partial claim
		// of a match that is not decided: whoever meets it follows the
		// match, and, once it is old enough to count as a dead
		// matcher's or its shard has moved, undoes it (the matcher's
		// recoverMatch). So the
		// failure is not the caller's to handle.
		_ = c.Release(ctx, made, g.Owner)
	}
	// With a claim lost to another owner, the match can never be
	// published, so the claims made are given back. With none lost but
	// one that failed, they are not: a create that timed out may have
	// been stored, and a worker that finds every claim the match's then
	// publishes it (recoverMatch); freed, its tickets could be matched
	// twice. They stay behind as above, for whoever meets them.
	if firstErr != nil {
		return nil, firstErr
	}
	return lost, nil
}
