package matcher

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// Batches. The matches a runner forms in one turn of its loop (a sweep,
// or the arrival of tickets) are committed together, by one goroutine,
// phase by phase: the records of the matches that have one are written
// together (claimAndDecide says which), then every ticket's claim, each
// carrying its match, then every match's check, its
// decision, its players' results, its allocation request, and its sent
// mark, each phase's writes sent at once and awaited together
// (events.PublishAll). A tick costs as many round trips as there are
// phases, whatever its number of matches, and the client and the server
// each write a phase in a few system calls, not one per match.
//
// Each match keeps its own outcome all the way: a match whose claim is
// refused, whose decision was made by another worker, or that is undone,
// leaves the batch after the decision and is settled on its own (as a
// match committed alone was: resolveLost, followUndone, sendOnce), beside
// the rest, which go on to be sent. An error in a phase fails only the
// matches whose writes failed.

// formed is a match the runner formed, with what its commit needs.
type formed struct {
	p       *pool.Pool
	match   events.Match
	ids     []string // the keys it claims (events.Match.ClaimKeys)
	all     []*pool.Entry
	notices []events.MatchedNotice
	now     time.Time
	// meta is what its publishes carry (matchMeta: set by commitBatch
	// when empty); links, its tickets' wait spans (spans.go).
	meta  events.Meta
	links []trace.Link
}

// inBatch is a formed match on its way through its batch's commit.
type inBatch struct {
	formed
	// ctx carries the match's Meta and commit span (startCommit).
	ctx         context.Context
	span        trace.Span
	published   bool
	log         *slog.Logger
	out         commitOutcome
	lost, stale map[string]string
	// encoded is the match's JSON: its claims carry it if carried, and
	// its record is it.
	encoded  []byte
	carried  bool
	decision events.Decision
	first    bool
	// err: the match could not be claimed, checked or decided (NATS
	// away); its tickets are retried.
	err error
}

// commit claims, publishes and acks one match: a batch of one.
func (c *committer) commit(ctx context.Context, p *pool.Pool, match events.Match, ids []string, all []*pool.Entry, notices []events.MatchedNotice, now time.Time) commitOutcome {
	var out commitOutcome
	c.commitBatch(ctx, []formed{{p: p, match: match, ids: ids, all: all, notices: notices, now: now}}, nil, func(o commitOutcome) { out = o })
	return out
}

// commitBatch commits the matches of batch together (see Batches) and
// hands each one's outcome to done, from this goroutine or, for a match
// settled on its own, from another: done must be safe for that. ended,
// if set, is called once the batch's own phases are over, before the
// outcomes of the matches they settled are handed over (the runner
// starts its next batch then).
func (c *committer) commitBatch(ctx context.Context, batch []formed, ended func(), done func(commitOutcome)) {
	ms := make([]*inBatch, len(batch))
	for i, f := range batch {
		if f.meta.CorrelationID == "" {
			f.meta = matchMeta(f.all)
		}
		m := &inBatch{formed: f, out: commitOutcome{p: f.p, entries: f.all}}
		m.ctx, m.span = startCommit(ctx, f)
		m.meta = events.MetaFrom(m.ctx) // with the span's traceparent, for a retry
		m.log = c.log.With("match_id", f.match.MatchID, "correlation_id", m.meta.CorrelationID)
		ms[i] = m
	}
	finish := func(m *inBatch) {
		endCommit(m.span, m.out, m.published)
		done(m.out)
	}
	c.claimAndDecide(ctx, ms)
	var alone sync.WaitGroup
	var send, settled []*inBatch
	for _, m := range ms {
		switch {
		case m.err != nil:
			m.log.Error("claim match tickets; tickets kept", "err", m.err)
			c.rec.abandoned.put(m.match.MatchID, c.rec.now())
			m.out.retry = m.all
			settled = append(settled, m)
		case m.decision == events.DecisionUndone || len(m.lost) > 0 || !m.first:
			alone.Go(func() {
				m.out = c.settleAlone(m)
				finish(m)
			})
		default:
			send = append(send, m)
		}
	}
	c.sendAll(ctx, send)
	if ended != nil {
		ended()
	}
	for _, m := range append(settled, send...) {
		finish(m)
	}
	alone.Wait()
}

// claimAndDecide stores the batch's matches, then claims their tickets
// (lost: those other owners hold). With every claim of a match held, it
// checks that each of its tickets is still its players' live ticket
// (stale: those that are not) and decides the match (first: this call
// made the decision).
func (c *committer) claimAndDecide(ctx context.Context, ms []*inBatch) {
	// Each phase has a deadline of its own: a slow write in one (a
	// ticket found claimed, read and tried again) fails its own match,
	// not every match of the batch at the phases after it, as one
	// deadline for all four did. All four end within commitBound.
	bctx, cancel := context.WithTimeout(ctx, commitBound(c.timeout))
	defer cancel()
	phase := func() (context.Context, context.CancelFunc) { return context.WithTimeout(bctx, c.timeout) }
	cctx, cancel1 := phase()
	defer cancel1()
	// Each claim carries its match (events.HeaderMatch): if this worker
	// dies (or stalls) between the claims and the publish, another finds
	// the match in the claim it meets and decides it (recoverMatch). A
	// match whose claims cannot carry it, whose carried bytes would cost
	// more than a record (events.MaxMatchCarried), or that a matcher of
	// another release may meet (recordAll: its claims are as that
	// release's, before or after an upgrade), is stored before its claims
	// instead; one whose room the allocator reads by its id
	// (AcceptsBackfill), as well.
	var records []events.KVWrite
	var recorded []*inBatch
	for _, m := range ms {
		m.encoded, _ = json.Marshal(m.match) // a Match always encodes
		m.carried = !c.recordAll && events.CarriedBy(len(m.encoded), len(m.ids))
		if !m.carried || m.match.AcceptsBackfill {
			records, recorded = append(records, events.KVWrite{Key: m.match.MatchID, Value: m.encoded}), append(recorded, m)
		}
	}
	for i, err := range events.PutAll(cctx, c.matches, records) {
		recorded[i].err = err
	}
	cctx, cancel2 := phase()
	defer cancel2()
	ms = c.claimAll(cctx, ms)
	// With every claim held: is each ticket still its players' live
	// ticket? (events.Players says why this check, after the claims,
	// is what keeps a superseded ticket out of every match.) Then the
	// match is decided, once: a worker recovering it may have checked
	// at another moment and decided first (events.Decisions).
	//
	// On an error the claims stay the match's, undecided: given back,
	// they could free the tickets of a match a recovering worker has
	// just published. The tickets wait in the pool; whoever meets the
	// claims next (this match formed again, or recoverMatch) decides.
	groups := make([]map[string][]string, len(ms))
	for i, m := range ms {
		groups[i] = m.match.TicketPlayers()
	}
	cctx, cancel3 := phase()
	defer cancel3()
	stale, errs := c.players.StaleBatch(cctx, groups)
	for i, m := range ms {
		m.stale, m.err = stale[i], errs[i]
	}
	ms = pending(ms)
	ids := make([]string, len(ms))
	wants := make([]events.Decision, len(ms))
	for i, m := range ms {
		if c.checked != nil {
			c.checked(m.match.MatchID)
		}
		ids[i], wants[i] = m.match.MatchID, wanted(m.stale)
	}
	cctx, cancel4 := phase()
	defer cancel4()
	for i, d := range c.decisions.DecideBatch(cctx, ids, wants) {
		ms[i].decision, ms[i].first, ms[i].err = d.Decision, d.First, d.Err
	}
}

// commitBound bounds a batch's phases up to its decisions, together: a
// recovering worker takes a match's claims for a dead commit's once they
// (or its record) are staleClaim old, so a live commit has decided well before
// then (a later look costs a needless undo, never a second outcome). The
// shard's next owner does not wait for a commit of its last owner
// (recoverer.leftByOwner), which follows that owner's decision.
// A publish timeout past that keeps its own bound, as one deadline had.
func commitBound(timeout time.Duration) time.Duration {
	return max(timeout, staleClaim*3/4)
}

// claimAll claims the tickets of the matches of ms with no error so far
// (their records stored, where they have one), all or none for each,
// each claim carrying its match, and returns those that hold every
// claim.
func (c *committer) claimAll(ctx context.Context, ms []*inBatch) []*inBatch {
	ms = pending(ms)
	groups := make([]events.ClaimGroup, len(ms))
	for i, m := range ms {
		groups[i] = events.ClaimGroup{IDs: m.ids, Owner: events.MatchOwner(m.match.MatchID)}
		if m.carried {
			groups[i].Match, groups[i].MatchSeal = m.encoded, c.matchSeals.SealMatch(groups[i].Owner, m.encoded)
		}
	}
	for i, g := range c.claims.ClaimBatch(ctx, groups) {
		ms[i].lost, ms[i].err = g.Lost, g.Err
	}
	var held []*inBatch
	for _, m := range pending(ms) {
		if len(m.lost) > 0 {
			continue
		}
		if c.claimed != nil {
			c.claimed(m.match.MatchID)
		}
		held = append(held, m)
	}
	return held
}

// pending are the matches of ms with no error so far.
func pending(ms []*inBatch) []*inBatch {
	var out []*inBatch
	for _, m := range ms {
		if m.err == nil {
			out = append(out, m)
		}
	}
	return out
}

// settleAlone settles a match of a batch that cannot be sent with the
// others: decided undone, with claims lost to other owners, or decided
// published first by a recovering worker, which may have sent it long
// ago (sendOnce reads whether).
func (c *committer) settleAlone(m *inBatch) commitOutcome {
	ctx := m.ctx
	if m.decision == events.DecisionPublished && len(m.stale) > 0 {
		// A worker recovering the match checked before the newer ticket
		// was taken and published it: the match stands (events.Players).
		m.log.Info("match published by a recovering worker; followed", "stale", len(m.stale))
	}
	if m.decision == events.DecisionUndone {
		return c.followUndone(ctx, m.log, m.match, m.all, m.stale, m.out)
	}
	if len(m.lost) > 0 {
		return c.resolveLost(ctx, m.log, m.match, m.all, m.lost, m.out)
	}
	if _, err := c.sendOnce(ctx, m.match); err != nil {
		m.log.Error("publish match; will retry it as it is", "err", err)
		m.out.unpublished = &unpublishedMatch{match: m.match, entries: m.all, notices: m.notices, meta: m.meta}
		return m.out
	}
	c.matched(m.match, m.all, m.notices, m.meta, m.now)
	m.published = true
	return m.out
}

// sendAll sends the matches of ms, decided published here, as send does
// one: every player's "matched" is stored before any match goes to the
// allocator (a player never sees "assigned" before "matched"), then
// the matches, then their sent marks. A match any of whose writes failed
// is kept to be retried as it is (unpublished); the others are matched.
func (c *committer) sendAll(ctx context.Context, ms []*inBatch) {
	if len(ms) == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	failed := make([]error, len(ms))
	var results, matches []*nats.Msg
	var owner []int // the match of each result
	for i, m := range ms {
		for _, t := range m.match.Tickets {
			for _, pl := range t.Players {
				msg, err := c.pub.ResultMsg(m.ctx, events.Result{TicketID: t.TicketID, PlayerID: pl, Status: events.StatusMatched, MatchID: m.match.MatchID})
				if failed[i] = cmpErr(failed[i], err); err != nil {
					continue // no message to send: the match is failed
				}
				results, owner = append(results, msg), append(owner, i)
			}
		}
	}
	for k, err := range c.pub.PublishAll(pctx, results) {
		failed[owner[k]] = cmpErr(failed[owner[k]], err)
	}
	var sending []int
	for i, m := range ms {
		if failed[i] != nil {
			continue
		}
		msg, err := c.pub.MatchMsg(m.ctx, m.match)
		if failed[i] = err; err == nil {
			matches, sending = append(matches, msg), append(sending, i)
		}
	}
	var ids []string
	var marking []int
	for k, err := range c.pub.PublishAll(pctx, matches) {
		if failed[sending[k]] = err; err == nil {
			ids, marking = append(ids, ms[sending[k]].match.MatchID), append(marking, sending[k])
		}
	}
	// A failed mark counts as a failed send, as in send: its retry, soon,
	// is stored once and marks it.
	for k, err := range c.decisions.MarkSentBatch(pctx, ids) {
		failed[marking[k]] = err
	}
	for i, m := range ms {
		if failed[i] != nil {
			m.log.Error("publish match; will retry it as it is", "err", failed[i])
			m.out.unpublished = &unpublishedMatch{match: m.match, entries: m.all, notices: m.notices, meta: m.meta}
			continue
		}
		c.matched(m.match, m.all, m.notices, m.meta, m.now)
		m.published = true
	}
}

// cmpErr is the first of a and b that is not nil.
func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
