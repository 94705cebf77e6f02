package matcher

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// committer claims, checks, decides and publishes formed matches (commit),
// each off the runner's goroutine: it holds no shard state, and what the
// runner must do comes back in a commitOutcome.
type committer struct {
	*matchState
	rec  *recoverer
	acks acker
	met  *metrics
	log  *slog.Logger

	// claimed and checked, when set (tests only), are called by a commit
	// between claiming its match's tickets and checking that they are
	// still live, and between that check and deciding the match.
	claimed, checked func(matchID string)
}

// commitOutcome is what became of a formed match: every entry is either
// settled (acked, by the commit) or handed back in retry or again.
type commitOutcome struct {
	p       *pool.Pool
	entries []*pool.Entry // every ticket of the match
	// unpublished: the tickets are claimed but the publish failed; the
	// match is retried as it is.
	unpublished *unpublishedMatch
	// retry: the claims could not be made (NATS is away); back in the pool
	// until the next sweep.
	retry []*pool.Entry
	// again: some tickets were decided elsewhere; these were not, and are
	// matched again at once.
	again []*pool.Entry
	// undone: the match was undone by another worker although none of its
	// tickets is stale; its id is not to be formed again (runner.undone).
	undone string
	// backfill, for a match filling a backfill request, is what became
	// of the request (backfill.go).
	backfill *backfillSettled
}

// unpublishedMatch is a match decided published whose publish failed.
type unpublishedMatch struct {
	match   events.Match
	entries []*pool.Entry
}

// commit claims, publishes and acks one match. It runs outside the owner
// goroutine and touches no runner state: what the runner must do comes
// back in the outcome.
func (c *committer) commit(ctx context.Context, p *pool.Pool, match events.Match, ids []string, all []*pool.Entry, now time.Time) commitOutcome {
	out := commitOutcome{p: p, entries: all}
	log := c.log.With("match_id", match.MatchID)
	lost, stale, decision, err := c.claimAndDecide(ctx, match, ids)
	if err != nil {
		log.Error("claim match tickets; tickets kept", "err", err)
		out.retry = all
		return out
	}
	if decision == events.DecisionPublished && len(stale) > 0 {
		// A worker recovering the match checked before the newer ticket
		// was taken and published it: the match stands (events.Players).
		log.Info("match published by a recovering worker; followed", "stale", len(stale))
	}
	if decision == events.DecisionUndone {
		return c.followUndone(ctx, log, match, all, stale, out)
	}
	if len(lost) > 0 {
		return c.resolveLost(ctx, log, all, lost, out)
	}
	if err := c.publish(ctx, match); err != nil {
		log.Error("publish match; will retry it as it is", "err", err)
		out.unpublished = &unpublishedMatch{match: match, entries: all}
		return out
	}
	c.matched(match, all, now)
	return out
}

// claimAndDecide stores the match, then claims its tickets; lost are those other
// owners hold. With every claim held, it checks that each ticket is still
// its players' live ticket (stale are those that are not) and decides the
// match.
func (c *committer) claimAndDecide(ctx context.Context, match events.Match, ids []string) (lost, stale map[string]string, decision events.Decision, err error) {
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// The match is stored before its tickets are claimed: if this worker
	// dies (or stalls) between the claims and the publish, another finds
	// the match behind the claims and decides it (recoverMatch).
	data, _ := json.Marshal(match) // a Match always encodes
	if _, err = c.matches.Put(cctx, match.MatchID, data); err != nil {
		return nil, nil, "", err
	}
	if lost, err = c.claims.ClaimAll(cctx, ids, events.MatchOwner(match.MatchID)); err != nil || len(lost) > 0 {
		return lost, nil, "", err
	}
	if c.claimed != nil {
		c.claimed(match.MatchID)
	}
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
	if stale, err = c.players.Stale(cctx, match.TicketPlayers()); err != nil {
		return nil, nil, "", err
	}
	if c.checked != nil {
		c.checked(match.MatchID)
	}
	decision, err = c.decisions.Decide(cctx, match.MatchID, wanted(stale))
	return nil, stale, decision, err
}

// wanted is the decision a check of a match's tickets asks for: undone if
// any is stale, published otherwise.
func wanted(stale map[string]string) events.Decision {
	if len(stale) > 0 {
		return events.DecisionUndone
	}
	return events.DecisionPublished
}

// followUndone undoes a match decided undone, by this commit or by a
// worker that checked after it (or took its claims for a dead matcher's).
func (c *committer) followUndone(ctx context.Context, log *slog.Logger, match events.Match, all []*pool.Entry, stale map[string]string, out commitOutcome) commitOutcome {
	if len(stale) == 0 {
		// Undone by another worker: look again, to undo it as the
		// winner does.
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		var err error
		stale, err = c.players.Stale(cctx, match.TicketPlayers())
		cancel()
		if err != nil {
			log.Error("undone match: check its tickets; tickets kept", "err", err)
			out.retry = all // its claims lead the next try to recoverMatch, which undoes it
			return out
		}
		if len(stale) == 0 {
			out.undone = match.MatchID
		}
	}
	log.Info("match undone", "stale", len(stale))
	return c.dropStale(ctx, log, match, all, stale, out)
}

// resolveLost resolves the tickets of a match whose claims other owners
// won (lost, by ticket): each is retried, handed back, dropped, or (not
// lost) matched again.
func (c *committer) resolveLost(ctx context.Context, log *slog.Logger, all []*pool.Entry, lost map[string]string, out commitOutcome) commitOutcome {
	for _, e := range all {
		owner, gone := lost[e.TicketID]
		if !gone {
			out.again = append(out.again, e)
			continue
		}
		if id, isMatch := events.OwnerMatchID(owner); isMatch && c.rec.recoverMatch(ctx, id) != recovered {
			out.retry = append(out.retry, e) // the other match is not out yet, or was undone: try again later
			continue
		}
		if owner == "" {
			// Claimed by another match that gave the claim back before
			// it could be read (two shards' matches of one ticket, a
			// visitor's and its home's, contend): no one decided it.
			out.retry = append(out.retry, e)
			continue
		}
		if owner == events.OwnerSuperseded && !e.Visitor {
			// Whoever superseded it may have died before telling its
			// players: taken in again, Take tells them (at least
			// once; the result's message id makes a repeat one). A
			// visitor is not taken in: its home shard's copy is.
			c.acks.nak(e.Ack)
			log.Info("ticket superseded; handed back to be told", "ticket_id", e.TicketID)
			continue
		}
		// Decided elsewhere (cancelled, or matched by another
		// owner): whoever won has told the players.
		c.acks.ack(e.Ack)
		c.met.tickets.WithLabelValues("decided_elsewhere").Inc()
		log.Info("ticket already decided; dropped", "ticket_id", e.TicketID, "owner", owner)
	}
	return out
}

// dropStale undoes a match decided undone (it claimed a ticket no longer
// its players' live ticket): that ticket's claim moves to superseded and
// its players are told (the newer ticket's supersede found the claim
// taken), and the other tickets' claims are given back, so they are
// matched again at once. Only a commit that won or read the decision
// "undone" calls it; recoverer.undoStale is its twin for a recovery.
func (c *committer) dropStale(ctx context.Context, log *slog.Logger, match events.Match, all []*pool.Entry, stale map[string]string, out commitOutcome) commitOutcome {
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	c.undo.releaseFresh(cctx, match, stale)
	for i, e := range all {
		live, gone := stale[e.TicketID]
		if !gone {
			out.again = append(out.again, e)
			continue
		}
		if err := c.undo.supersede(cctx, match, match.Tickets[i], live); err != nil {
			// Its message comes back; taken in again, it finds the newer
			// ticket and is superseded then.
			log.Error("supersede a ticket found no longer live; will retry", "ticket_id", e.TicketID, "err", err)
			c.claims.Release(cctx, []string{e.TicketID}, events.MatchOwner(match.MatchID))
			c.acks.nak(e.Ack)
			continue
		}
		c.acks.ack(e.Ack)
		log.Info("ticket no longer its players' live ticket; match undone", "ticket_id", e.TicketID, "live", live)
	}
	return out
}

// matched acks a published match's tickets and counts it.
func (c *committer) matched(match events.Match, all []*pool.Entry, now time.Time) {
	lo, hi := events.MaxSkill, events.MinSkill
	for _, e := range all {
		c.acks.ack(e.Ack)
		c.met.waitTime.Observe(now.Sub(time.Unix(0, e.Created)).Seconds())
		lo, hi = min(lo, e.Skill), max(hi, e.Skill)
	}
	c.met.spread.Observe(float64(hi - lo))
	c.met.tickets.WithLabelValues("matched").Add(float64(len(all)))
	c.met.matches.WithLabelValues(match.Mode).Inc()
	c.log.Info("match formed", "match_id", match.MatchID, "mode", match.Mode, "tickets", len(all), "skill_spread", hi-lo)
}

// matchState is where a formed match's state lives, shared by every
// worker, and what a commit and a recovery act on it with: the bucket of
// match records and their decisions, the claims and live tickets a
// decision rests on, the undoing of a match decided undone and the
// publishing of one decided published. A worker makes one when it binds
// its buckets, and all its runners' commits and recoveries share it.
type matchState struct {
	// matches keeps each formed match's record, so a recovery finds the
	// match behind its claims; decisions, in the same bucket, each
	// match's one decision.
	matches   jetstream.KeyValue
	decisions *events.Decisions
	claims    *events.Claims
	players   *events.Players
	undo      undoer
	pub       *events.Publisher
	// timeout bounds each step's round trips (Config.PublishTimeout).
	timeout time.Duration
}

// publish tells every player they are matched, then hands the match to
// the allocator. The match id is the message id, so a retry is stored once.
func (f *matchState) publish(ctx context.Context, match events.Match) error {
	pctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	var rs []events.Result
	for _, t := range match.Tickets {
		for _, pl := range t.Players {
			rs = append(rs, events.Result{TicketID: t.TicketID, PlayerID: pl, Status: events.StatusMatched, MatchID: match.MatchID})
		}
	}
	// Every "matched" is stored before the match goes to the allocator,
	// so a player never sees "assigned" before "matched".
	if err := f.pub.Results(pctx, rs); err != nil {
		return err
	}
	return f.pub.Match(pctx, match)
}
