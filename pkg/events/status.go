package events

import "strings"

// Rank orders the statuses of a ticket's life: queued 1, matched 2, any
// terminal status 3, an unknown one 0. A result whose rank is not above
// the best one seen for its ticket tells a reader nothing new (a repeat,
// or a late "matched" after the ticket ended), and of several stored
// results the highest rank is where the ticket stands. The frontend also
// uses it as the event id of Server-Sent Events, so the numbers are a wire
// contract.
func (s Status) Rank() int {
	switch {
	case s == StatusQueued:
		return 1
	case s == StatusMatched:
		return 2
	case s.Terminal():
		return 3
	}
	return 0
}

// InMatch says whether a ticket with status s is in a match that stands:
// "matched" (the matcher's) and "assigned" (the allocator's) are sent
// only for a match decided published.
func (s Status) InMatch() bool { return s == StatusMatched || s == StatusAssigned }

// OwnerStatus is the status a held claim decides for its ticket: a match
// owner (and any owner not listed below) means matched.
func OwnerStatus(owner string) Status {
	switch owner {
	case OwnerCancelled, OwnerSuperseded:
		return StatusCancelled
	case OwnerExpired:
		return StatusExpired
	case OwnerFailed:
		return StatusFailed
	}
	return StatusMatched
}

// ClaimedResult is the result a held claim implies for one player of a
// ticket, for a reader that finds the claim but not (or no longer) the
// result its owner published: the status, a reason for the endings that
// are not a match, and the match id of a match owner.
func ClaimedResult(ticketID, playerID, owner string) Result {
	r := Result{TicketID: ticketID, PlayerID: playerID, Status: OwnerStatus(owner)}
	switch owner {
	case OwnerCancelled:
		r.Reason = "cancelled"
	case OwnerSuperseded:
		r.Reason = supersededReason("")
	case OwnerExpired:
		r.Reason = "no match within the maximum wait"
	case OwnerFailed:
		r.Reason = "failed"
	default:
		r.MatchID, _ = OwnerMatchID(owner)
	}
	return r
}

// supersededReason is the reason told for a ticket superseded by the
// ticket newer, or by one not known ("") to its teller.
func supersededReason(newer string) string {
	if newer == "" {
		return "superseded by a newer ticket of the player"
	}
	return supersededByTicket + newer
}

// supersededByTicket starts the reason of a ticket superseded by a newer
// one its teller knows: the reason is where a result names the newer
// ticket (SupersededBy). A field of its own would be refused by the
// strict decoders of frontends not yet upgraded (DecodeResult).
const supersededByTicket = "superseded by ticket "

// SupersededBy is the newer ticket r says ended its ticket ("": r is no
// such result, or its teller did not know the newer one). Whoever tells
// a ticket superseded names a ticket of the player it read live, or the
// one it was taking (Players): a take tells before it writes the newer
// ticket's entries, and may fail in between, so the name is no proof
// that the newer ticket is live. Each player of the older ticket is
// told the same name; for a party, another player's own live ticket may
// be another one.
func SupersededBy(r Result) string {
	newer, ok := strings.CutPrefix(r.Reason, supersededByTicket)
	if r.Status != StatusCancelled || !ok || checkToken(newer) != nil {
		return ""
	}
	return newer
}
