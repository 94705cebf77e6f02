package matcher

import (
	"context"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// maxInFlight bounds the matches of one shard formed and not yet settled
// (in a batch being formed or committed). A batch's commit is a few
// JetStream round trips (batch.go), whatever its size; the owner
// goroutine never waits on the network to match, and the matches formed
// while a batch commits go in the next one.
const maxInFlight = 64

// tryMatch forms matches around anchor until none fits, unless a match
// function forms p's matches (builtIn, function.go).
func (r *runner) tryMatch(ctx context.Context, p *pool.Pool, anchor *pool.Entry, now time.Time) {
	if !r.builtIn(p) {
		return
	}
	for p.Contains(anchor) {
		teams := p.MatchAround(anchor, now)
		if teams == nil {
			return
		}
		r.formMatch(ctx, p, teams, now)
	}
}

// formMatch puts a match, its tickets out of the pool, in the batch the
// runner commits next (commitFormed), and goes on: the owner goroutine
// does not wait for JetStream. When maxInFlight matches are formed and
// not settled it first commits the batch, or settles one.
func (r *runner) formMatch(ctx context.Context, p *pool.Pool, teams [][]*pool.Entry, now time.Time) {
	mode := p.Mode()
	match := events.Match{Mode: mode.Name, Region: r.shard.Region, Tier: r.shard.Tier, CreatedAt: now.UTC(), AcceptsBackfill: mode.AcceptsBackfill}
	if len(teams) < mode.Teams {
		// Opened early (pool.MatchAround): the room has the mode's
		// shape, its other teams' seats free from the start.
		match.Teams, match.TeamSize = mode.Teams, mode.TeamSize
	}
	var ids, keys []string
	var all []*pool.Entry
	for team, entries := range teams {
		for _, e := range entries {
			ids = append(ids, e.TicketID)
			keys = append(keys, matchKey(e))
			all = append(all, e)
			r.inflight[e.TicketID] = e.Seq
			match.Tickets = append(match.Tickets, matchTicketOf(e, team))
		}
	}
	match.MatchID = r.matchID(keys)
	notices := r.matchedNotices(match.MatchID, all)
	r.stats.matched(match.Mode, all, now)
	links := waitedAll(ctx, all, now)
	r.makeRoom(ctx)
	r.forming = append(r.forming, formed{p: p, match: match, ids: ids, all: all, notices: notices, now: now, links: links})
}

// makeRoom makes room for one more match in flight: while maxInFlight
// are formed and not settled, it commits the batch being formed, or
// settles a commit.
func (r *runner) makeRoom(ctx context.Context) {
	for r.committing+len(r.forming) >= maxInFlight {
		if len(r.forming) > 0 {
			r.commitFormed(ctx)
			continue
		}
		// Without rematching: tickets put back wait for the next arrival or
		// sweep, so settling here never nests another formMatch.
		r.settleCommit(ctx, <-r.committed, false)
	}
}

// commitFormed commits the matches formed since the last batch, as one
// batch (committer.commitBatch) on a goroutine of its own; each match's
// outcome comes back on committed.
func (r *runner) commitFormed(ctx context.Context) {
	if len(r.forming) == 0 {
		return
	}
	batch := r.forming
	r.forming = nil
	r.committing += len(batch)
	r.batches.Add(1)
	go r.commits.commitBatch(ctx, batch, func() { r.batches.Add(-1) }, func(o commitOutcome) { r.committed <- o })
}

// commitTurn commits the matches formed in the turn of the loop that
// ends, unless a batch is still in its phases: then they wait for the
// next turn after it, and go with those formed meanwhile (a batch's
// end wakes the loop with its outcomes; a sweep, at the latest, commits
// them). So under load the batches grow, and a lone match goes at once.
func (r *runner) commitTurn(ctx context.Context, sweep bool) {
	if sweep || r.batches.Load() == 0 {
		r.commitFormed(ctx)
	}
}

// matchKey names e's message for events.MatchID, by the stream it came by.
func matchKey(e *pool.Entry) string {
	if e.Visitor {
		return events.VisitorMatchKey(e.TicketID, e.Seq)
	}
	return events.MatchKey(e.TicketID, e.Seq)
}

// matchID names the match of the ticket messages keys: by MatchID, unless
// that match was decided undone (runner.undone: spent). A match formed
// again under an id its last commit gave up is committed anew, and no
// longer counts as given up.
func (r *runner) matchID(keys []string) string {
	id := events.MatchID(keys)
	for r.undone.has(id) {
		id = events.MatchIDAfter(id, keys)
	}
	r.commits.rec.abandoned.formed(id)
	return id
}

// settleCommit takes a commit's outcome back into the runner: tickets that
// must wait return to their pool, a match whose publish failed is kept for
// retry. With rematch, tickets whose partners were decided elsewhere are
// matched again at once.
func (r *runner) settleCommit(ctx context.Context, o commitOutcome, rematch bool) {
	r.committing--
	r.settleBackfill(o)
	for _, e := range o.entries {
		delete(r.inflight, e.TicketID)
	}
	if o.unpublished != nil {
		r.unpublished = append(r.unpublished, *o.unpublished)
	}
	if o.undone != "" {
		r.undone.put(o.undone, r.now())
	}
	for _, e := range o.retry {
		r.putBack(ctx, o.p, e, false)
	}
	if !rematch {
		// Without rematching (the owner is settling a commit to make
		// room, or stopping): back in the pool as they are; a later
		// commit's stale check still keeps a superseded one out.
		for _, e := range o.again {
			r.putBack(ctx, o.p, e, false)
		}
		return
	}
	for _, e := range o.again {
		if e.Visitor {
			r.putBack(ctx, o.p, e, true)
			continue
		}
		// Its claim was given back (a partner was decided elsewhere). A
		// newer ticket of its player may have been taken meanwhile, its
		// supersede losing to this match's claim: taken in again, it is
		// superseded now (and its players told) instead of waiting, not
		// live, until a partner or its expiry finds it.
		r.admit(ctx, o.p, e, nil, nil, events.Ticket{}, false)
	}
}

// retryUnpublished publishes again the matches whose publish failed.
// Once one fails, the rest wait for the next sweep untried: each would
// wait out the same bound on a JetStream that does not answer, one after
// another, and the shard would match nothing meanwhile.
func (r *runner) retryUnpublished(ctx context.Context) {
	keep := r.unpublished[:0]
	failed := false
	for _, um := range r.unpublished {
		if failed {
			keep = append(keep, um)
			continue
		}
		if _, err := r.commits.sendOnce(events.WithMeta(ctx, um.meta), um.match); err != nil {
			keep = append(keep, um)
			failed = true
			continue
		}
		r.commits.matched(um.match, um.entries, um.notices, um.meta, r.now())
	}
	r.unpublished = keep
}
