package matcher

import (
	"context"
	"errors"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// copies is what a runner does with matched notices (events.MatchedNotice):
// a ticket of which its pools may hold a copy (a visitor, or its home
// message when a visitor was matched) is in a published match. The copy
// is dropped once that match is read holding its claim and every other
// (checkCopy): the notice is a hint, and a ticket queued again after that
// match (its claims given back) must stay. Only the runner's goroutine
// touches it, but for notices, which the worker sends on.
type copies struct {
	// matched remembers, by ticket, the match a recent notice named, for
	// a copy that comes after its notice.
	matched *recent[string]
	// notices receives the notices the worker routes to the runner
	// (queueMatchedNotice).
	notices chan events.MatchedNotice
	// checks receives the claim reads' answers; checking counts the reads
	// under way by ticket, underway all of them.
	checks   chan copyCheck
	checking map[string]int
	underway int
	// again are the copies whose claim could not be read: read again at
	// the next sweep.
	again []copyCheck
}

// maxMatchedNotes bounds the notices a runner remembers for copies still
// to come (a runner hears only the notices of tickets it may hold a copy
// of: Worker.routeNotice); past it, such a copy waits until it meets its
// claim.
const maxMatchedNotes = 1 << 14

// maxCopyChecks bounds the claim reads of copies under way at once.
const maxCopyChecks = 256

func newCopies() *copies {
	return &copies{
		matched: newRecent[string](maxMatchedNotes), notices: make(chan events.MatchedNotice, 1024),
		checks: make(chan copyCheck, maxCopyChecks), checking: map[string]int{},
	}
}

// copyCheck is a read of a copy's claim: whether (matched) match, a
// notice's, holds the claim of pooled ticket e and every other claim of
// its own (holdsWhole); err when they could not be read.
type copyCheck struct {
	p       *pool.Pool
	e       *pool.Entry
	match   string
	matched bool
	err     error
}

// checkingCopy reports whether a claim read of a copy of ticketID is under
// way. A second message of that ticket is not acked as a duplicate then
// (runner.add): the read may have begun before the ticket's match was
// queued again (its claim given back, the ticket published again), and
// drop the pooled message for that match when its answer comes; the
// second message, naked, comes back once the read is settled.
func (c *copies) checkingCopy(ticketID string) bool { return c.checking[ticketID] > 0 }

// queueMatchedNotice hands the runner a matched notice (takeMatchedNotice).
// A hint, never waited for: with the runner behind, the copy waits until
// it meets its claim.
func (r *runner) queueMatchedNotice(n events.MatchedNotice) {
	select {
	case r.copies.notices <- n:
	default:
	}
}

// takeMatchedNotice takes a matched notice: each copy of its ticket the
// pools hold has its claim read (checkCopy), and the notice is
// remembered for a copy that comes after it (checkNoted).
func (r *runner) takeMatchedNotice(ctx context.Context, n events.MatchedNotice) {
	r.copies.matched.put(n.TicketID, n.MatchID, r.now())
	for _, p := range r.pools {
		if e, ok := p.Get(n.TicketID); ok {
			r.checkCopy(ctx, p, e, n.MatchID)
		}
	}
}

// checkNoted reads the claim of e, just put in pool p, if a recent
// matched notice named its ticket, and reports whether it did: e then
// waits unmatched until the answer comes (settleCopyCheck).
func (r *runner) checkNoted(ctx context.Context, p *pool.Pool, e *pool.Entry) bool {
	match, noted := r.copies.matched.get(e.TicketID)
	if noted {
		r.checkCopy(ctx, p, e, match)
	}
	return noted
}

// checkCopy reads, off the owner goroutine, whether match holds the
// claim of pooled ticket e, and all its others (holdsWhole);
// settleCopyCheck takes the answer back. Every read ends before the
// runner stops (run settles those under way).
func (r *runner) checkCopy(ctx context.Context, p *pool.Pool, e *pool.Entry, match string) {
	for r.copies.underway >= maxCopyChecks {
		r.settleCopyCheck(ctx, <-r.copies.checks, false) // without matching, as settleCommit makes room
	}
	r.copies.underway++
	r.copies.checking[e.TicketID]++
	id, rec, checks := e.TicketID, r.commits.rec, r.copies.checks
	go func() {
		cctx, cancel := context.WithTimeout(ctx, rec.timeout)
		defer cancel()
		whole, err := rec.holdsWhole(cctx, id, match)
		checks <- copyCheck{p: p, e: e, match: match, matched: whole, err: err}
	}()
}

// holdsWhole reports whether match matchID holds the claim of ticketID
// and every other claim of its match (recoverer.allClaimed), read as
// that claim carries it (matchOf). A match holding only some is being
// requeued by the allocator, which gives its claims back before it
// publishes its tickets again: a message of ticketID may be that ticket
// queued again, with a claim the allocator is still to give back (or
// failed to, and gives back at its next try). A match that matchOf
// counts decided (no match carried and no record, or one that does not
// decode) counts as whole: records live as long as the claims
// (events.Topology), so it was formed before records were kept. So does
// one carried unverified (errUnverified), never sent from here: the
// recovery its ticket's own message meets settles it, and frees the
// ticket there if it is undone.
func (rc *recoverer) holdsWhole(ctx context.Context, ticketID, matchID string) (bool, error) {
	m, _, found, err := rc.matchOf(ctx, matchID, ticketID)
	switch {
	case errors.Is(err, errUnverified):
		return true, nil
	case errors.Is(err, errClaimMoved):
		return false, nil
	case err != nil:
		return false, err
	case !found:
		return true, nil
	}
	return rc.allClaimed(ctx, matchID, m)
}

// settleCopyCheck drops a copy whose notice's match holds its claim and
// all its others (holdsWhole), if it is still pooled: a message of the
// ticket pooled when the read began, while the match held every claim,
// is of the ticket that match decided (a message queued again comes only
// after the allocator began giving the claims back, and is not acked
// while the read is under way: checkingCopy). It is acked, its players
// told nothing: the match told them. A copy that left its pool meanwhile
// (into a commit, which meets the claim) is left alone; one whose claims
// could not be read is read again at the next sweep; one kept is
// matched, with rematch, as any other.
func (r *runner) settleCopyCheck(ctx context.Context, c copyCheck, rematch bool) {
	r.copies.underway--
	if r.copies.checking[c.e.TicketID]--; r.copies.checking[c.e.TicketID] <= 0 {
		delete(r.copies.checking, c.e.TicketID)
	}
	switch {
	case !c.p.Contains(c.e):
		return
	case c.err != nil:
		r.copies.again = append(r.copies.again, c)
		return
	case !c.matched:
		if rematch {
			r.tryMatch(ctx, c.p, c.e, r.now())
		}
		return
	}
	c.p.Remove(c.e.TicketID)
	r.acks.ack(c.e.Ack)
	r.met.tickets.WithLabelValues("decided_elsewhere").Inc()
	r.log.Info("copy of a matched ticket dropped", "ticket_id", c.e.TicketID, "match_id", c.match, "visitor", c.e.Visitor)
}

// checkCopiesAgain reads again the claims of the copies whose read
// failed, those still pooled (a sweep's).
func (r *runner) checkCopiesAgain(ctx context.Context) {
	again := r.copies.again
	r.copies.again = nil
	for _, c := range again {
		if c.p.Contains(c.e) {
			r.checkCopy(ctx, c.p, c.e, c.match)
		}
	}
}

// putBack returns e, handed back by a commit, to pool p; with rematch it
// is matched at once, unless a matched notice named it meanwhile (its
// claim is read first: checkNoted). A commit that lost e's claim to the
// notice's match may hand it back (that match not yet decided when it
// looked); nothing else would read the claim again.
func (r *runner) putBack(ctx context.Context, p *pool.Pool, e *pool.Entry, rematch bool) {
	p.Add(e)
	if r.checkNoted(ctx, p, e) || !rematch {
		return
	}
	r.tryMatch(ctx, p, e, r.now())
}

// matchedNotices are the matched notices of match matchID's tickets all
// that may have copies in other shards: a visitor (its home shard holds
// its message, and may have offered it elsewhere too) or a ticket its
// shard offered elsewhere (pool.Entry.Offered). Each names the ticket's
// own shard, so that only the shards that may hold a copy hear it; a
// visitor from another region names none (its entry does not keep it).
// It reads the entries on the runner's goroutine, when the match forms:
// the commit sends the notices once the match is published.
func (r *runner) matchedNotices(matchID string, all []*pool.Entry) []events.MatchedNotice {
	var ns []events.MatchedNotice
	for _, e := range all {
		if !e.Visitor && !e.Offered {
			continue
		}
		n := events.MatchedNotice{TicketID: e.TicketID, MatchID: matchID, HomeRegion: r.shard.Region, HomeTier: r.shard.Tier}
		switch {
		case e.Tier != "": // from a neighbouring tier of this region
			n.HomeTier = e.Tier
		case e.Visitor: // from another region, which is not kept
			n.HomeRegion = ""
		}
		ns = append(ns, n)
	}
	return ns
}
