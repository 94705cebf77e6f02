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

// takenElsewhere reports whether rec, a replacement whose take failed,
// was made its player's live ticket all the same: the tracker heard it
// supersede the player's waiting ticket (results.Tracker.HeardSuperseding:
// a one-player ticket's; a hint), and a leader read of the player's entry
// names it. Then any later check of a match holding an older ticket of
// the player finds it stale, as after a take that succeeded (a match
// checked before may still stand: events.Players), and a 202 for it says
// nothing a successful take's would not. Its frontend's own take and withdrawal may both be cut off
// while its shard's owner, which reaches the buckets, takes it in: in
// chaos S65 the owner told the waiting ticket's player "superseded by"
// the replacement 5-7 s before its client was told 503, and then matched
// it (a no-show).
//
// The hint alone is not enough: a take tells before it writes the
// player's entry, and another ticket of the player taken in between (a
// second request, a NATS ticket) stays matchable if this one's write
// then fails (review R2). A creation whose request has ended (its client
// hung up) is not answered so: nobody reads the 202, and its ticket is
// withdrawn as before.
func (s *Service) takenElsewhere(ctx context.Context, rec Record) bool {
	id := rec.Ticket.TicketID
	if ctx.Err() != nil || s.tracker == nil || len(rec.Ticket.Players()) != 1 {
		return false
	}
	tctx, cancel := context.WithTimeout(ctx, events.ClaimCallTimeout)
	defer cancel()
	if !s.tracker.HeardSuperseding(tctx, id) {
		return false
	}
	player := rec.Ticket.Players()[0]
	live, err := s.players.Live(tctx, player)
	if err != nil || live != id {
		s.log.Warn("replacement heard superseding its player's waiting ticket, but its player's entry does not name it (yet)",
			"ticket_id", id, "live", live, "err", err)
		return false
	}
	s.log.Warn("replacement found its player's live ticket though its take failed: its creation answers it queued", "ticket_id", id)
	return true
}

// heardWait bounds the tracker's answer to heardInMatch.
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
