package tickets

import (
	"context"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// heardInMatch is the result the tracker heard for ticket id if it says
// the ticket is in a match (events.Status.InMatch), else nil. It is
// asked only when the ticket's claim could not be read: a claim read and
// found gone is newer news than a "matched" heard (the allocator gives a
// match's claims back when it requeues its tickets, and the "queued" it
// tells then ranks below "matched"). The frontend's one
// subscription hears the matchers' results even when its own reads and
// writes of the buckets fail: in chaos S62 a replacement's take and
// withdrawal could not reach the players and claims buckets for 7 s,
// while its shard's owner, which could, took it in and matched it, and
// the client was told an error for a ticket a game then waited for (two
// no-shows).
func (s *Service) heardInMatch(ctx context.Context, id string) *events.Result {
	if s.tracker == nil {
		return nil
	}
	// A bound of its own: the withdrawal's tries and its claim's read may
	// have spent ctx's (calls that timed out), and the tracker answers
	// from memory in microseconds.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), heardWait)
	defer cancel()
	heard := s.tracker.Heard(hctx, id)
	if heard == nil || !heard.Status.InMatch() {
		return nil
	}
	s.log.Warn("ticket not withdrawn: its result says a matcher put it in a match; its creation answers it",
		"ticket_id", id, "status", heard.Status, "match_id", heard.MatchID)
	return heard
}

// heardSuperseding reports whether the tracker heard ticket id, a
// replacement whose take failed, supersede its one player's waiting
// ticket (results.Tracker.HeardSuperseding: never a party's): a take of
// it got that far, so no older ticket of the player can be matched any
// more, and a 202 for it says nothing untrue. Its frontend's own take
// and withdrawal may both be cut off
// while its shard's owner, which reaches the buckets, takes it in: in
// chaos S65 the owner told the waiting ticket's player "superseded by"
// the replacement 5-7 s before its client was told 503, and then matched
// it (a no-show).
func (s *Service) heardSuperseding(ctx context.Context, id string) bool {
	if s.tracker == nil {
		return false
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), heardWait)
	defer cancel()
	if !s.tracker.HeardSuperseding(hctx, id) {
		return false
	}
	s.log.Warn("replacement not withdrawn: a result heard says it superseded its players' waiting tickets; its creation answers it queued",
		"ticket_id", id)
	return true
}

// heardWait bounds the tracker's answer to heardInMatch and
// heardSuperseding.
const heardWait = time.Second

// isMatch says whether owner is a match's claim.
func isMatch(owner string) bool {
	_, ok := events.OwnerMatchID(owner)
	return ok
}

// withdrawFailed logs a withdrawal that returned err, and returns the
// ticket's claim: cur, the one the withdrawal's claim lost to, or, when
// it did not get that far, the one read now ("": none, or unread). A
// claim that won before the telling or its publish failed keeps the
// ticket out of every match all the same. A match's claim means the
// withdrawal came too late: the ticket is in a match, and its creation
// must answer it, though reading its status failed (the claims bucket
// without a leader, RESULTS cut off), or the client is told an error for
// a ticket a game waits for (a no-show; review R3). No claim read leaves
// its fate unknown (fateUnknown); unread says the read failed, rather
// than finding none.
func (s *Service) withdrawFailed(ctx context.Context, rec Record, cause, err error, cur string) (owner string, unread bool) {
	id := rec.Ticket.TicketID
	if cur == "" {
		var rerr error
		cur, rerr = s.claims.Owner(ctx, id)
		unread = rerr != nil
	}
	switch {
	case cur == events.OwnerCancelled:
		s.log.Warn("ticket withdrawn (claimed cancelled) but its players may not be told",
			"ticket_id", id, "cause", cause, "err", err)
	case isMatch(cur):
		s.log.Warn("ticket not withdrawn: a matcher put it in a match first; its creation answers it",
			"ticket_id", id, "cause", cause, "owner", cur, "err", err)
	case cur == "":
		s.log.Warn("ticket not withdrawn: its claim failed and none could be read, so a matcher may still put it in a match",
			"ticket_id", id, "cause", cause, "err", err)
	default:
		s.log.Warn("ticket not withdrawn: already decided, in no match", "ticket_id", id, "cause", cause, "owner", cur, "err", err)
	}
	return cur, unread
}
