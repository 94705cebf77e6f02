package matcher

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// committer claims, checks, decides and publishes formed matches, a batch
// at a time (commitBatch, batch.go), off the runner's goroutine: it holds
// no shard state, and what the runner must do comes back in a
// commitOutcome per match.
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

// unpublishedMatch is a match decided published whose publish failed,
// with the matched notices to send once it is sent.
type unpublishedMatch struct {
	match   events.Match
	entries []*pool.Entry
	notices []events.MatchedNotice
	// meta is what its commit published it with (spans.go).
	meta events.Meta
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
func (c *committer) resolveLost(ctx context.Context, log *slog.Logger, match events.Match, all []*pool.Entry, lost map[string]string, out commitOutcome) commitOutcome {
	for _, e := range all {
		owner, gone := lost[e.TicketID]
		if !gone {
			out.again = append(out.again, e)
			continue
		}
		if id, isMatch := events.OwnerMatchID(owner); isMatch && c.rec.recoverMatch(ctx, id, e.TicketID) != recovered {
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
		// Decided elsewhere. Whoever decided it may have died, or
		// failed (NATS away), before telling its players; a superseder
		// also before writing the newer ticket, so that, taken in again,
		// it would be found live and pooled again untold. They are told
		// here unless they were (tellClaimed); a match's claim was
		// followed above.
		tctx, cancel := context.WithTimeout(ctx, c.timeout)
		err := c.tellClaimed(tctx, events.Shard{Region: match.Region, Tier: match.Tier}, match.Mode, e, owner, "")
		cancel()
		if err != nil {
			c.acks.nak(e.Ack)
			log.Info("ticket decided elsewhere; handed back to be told", "ticket_id", e.TicketID, "owner", owner, "err", err)
			continue
		}
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
	// A fresh ticket whose claim stays the match's is matched again
	// (out.again), and its next commit meets the claim and follows the
	// match, undone, which gives it back then (recoverMatch): the failure
	// costs it a try, not its life.
	_ = c.undo.releaseFresh(cctx, match, stale)
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
			// Kept the match's, the claim leads the ticket's next try to
			// the match, undone, which supersedes it then (recoverMatch):
			// no need to know whether it was given back.
			_ = c.claims.Release(cctx, []string{e.TicketID}, events.MatchOwner(match.MatchID))
			c.acks.nak(e.Ack)
			continue
		}
		c.acks.ack(e.Ack)
		log.Info("ticket no longer its players' live ticket; match undone", "ticket_id", e.TicketID, "live", live)
	}
	return out
}

// matched acks a published match's tickets, counts it, and sends
// notices, asking the runners that may hold copies of its tickets to drop
// them.
func (c *committer) matched(match events.Match, all []*pool.Entry, notices []events.MatchedNotice, meta events.Meta, now time.Time) {
	for _, e := range all {
		c.acks.ack(e.Ack)
	}
	spread := c.met.formed(match.Mode, all, now)
	c.log.Info("match formed", "match_id", match.MatchID, "mode", match.Mode, "tickets", len(all), "skill_spread", spread,
		"ticket_ids", ticketIDs(all), "correlation_id", meta.CorrelationID, "ticket_correlation_ids", correlationIDs(all))
	// Its own context: a retry of an unpublished match has none, and the
	// notices only need the connection.
	c.sendMatchedNotices(context.Background(), match, notices)
}

// matchState is where a formed match's state lives, shared by every
// worker, and what a commit and a recovery act on it with: the bucket of
// match decisions (and records), the claims and live tickets a
// decision rests on, the undoing of a match decided undone and the
// publishing of one decided published. A worker makes one when it binds
// its buckets, and all its runners' commits and recoveries share it.
type matchState struct {
	// matches keeps the records of matches whose claims do not carry
	// them or whose rooms take backfill (claimAndDecide;
	// recoverer.matchOf), and of every match with recordAll
	// (Config.MatchRecords, or claims that cannot carry a match);
	// decisions, in the same bucket, each match's one decision.
	matches   jetstream.KeyValue
	recordAll bool
	// matchSeals seal the match each claim carries and verify the
	// carried matches a recovery meets (events.HeaderMatchSeal;
	// Config.MatchSealKeyFile); nil: carried unsealed, and taken as they
	// are. unverified counts the reads of those whose seal did not
	// verify; unverifiedOnce logs the first.
	matchSeals     *events.Seals
	unverified     prometheus.Counter
	unverifiedOnce sync.Once
	decisions      *events.Decisions
	claims         *events.Claims
	players        *events.Players
	undo           undoer
	pub            *events.Publisher
	// timeout bounds each step's round trips (Config.PublishTimeout).
	timeout time.Duration
}

// sendOnce sends a match decided published (send) unless it was sent
// already (events.Decisions.Sent), and reports whether it sent it: a
// retry, a recovery or a commit that follows another's decision may come
// after the duplicate window, when a repeat would be stored and heard
// again.
func (f *matchState) sendOnce(ctx context.Context, match events.Match) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, f.timeout)
	sent, err := f.decisions.Sent(cctx, match.MatchID)
	cancel()
	if err != nil || sent {
		return false, err
	}
	if err := f.send(ctx, match); err != nil {
		return false, err
	}
	return true, nil
}

// send tells every player they are matched, hands the match to the
// allocator, and records that the match was sent (events.Decisions.MarkSent).
// The match id is the message id, so a retry within the duplicate window
// is stored once; after it, a retry finds the record and sends nothing
// (sendOnce). A failed record counts as a failed send: its retry, soon,
// is stored once and records it.
func (f *matchState) send(ctx context.Context, match events.Match) error {
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
	if err := f.pub.Match(pctx, match); err != nil {
		return err
	}
	return f.decisions.MarkSent(pctx, match.MatchID)
}

// sendMatchedNotices sends the matched notices ns of match m's tickets
// (events.MatchedNotice), on the cancels subject of m's shard, so that
// the runners that may hold copies of them drop those. Core NATS: a
// notice that fails only leaves a copy until it meets its claim.
func (f *matchState) sendMatchedNotices(ctx context.Context, m events.Match, ns []events.MatchedNotice) {
	for _, n := range ns {
		_ = f.pub.MatchedNotice(ctx, m.Region, m.Tier, n)
	}
}
