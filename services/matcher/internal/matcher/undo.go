package matcher

import (
	"cmp"
	"context"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// undoer undoes a match decided undone, for a commit (committer.dropStale)
// and for a recovery (recoverer.undoStale) alike: the claims of its stale
// tickets (no longer their players' live ticket) move to superseded and
// their players are told, and the other claims are given back.
type undoer struct {
	claims     *events.Claims
	superseder superseder
}

// supersede moves the claim of t, a ticket of m, from m to superseded and,
// if this call moved it, tells its players that their ticket live replaced
// it (the newer ticket's supersede found the claim taken by m).
func (u undoer) supersede(ctx context.Context, m events.Match, t events.MatchTicket, live string) error {
	superseded, err := u.claims.Supersede(ctx, t.TicketID, events.MatchOwner(m.MatchID))
	if err != nil || !superseded {
		return err
	}
	lt := events.LiveTicket{TicketID: t.TicketID, Players: t.Players, Region: m.Region, Tier: m.Tier, Mode: m.Mode, CreatedAt: t.CreatedAt}
	return u.claims.Tell(ctx, events.Telling{Ticket: lt, Owner: events.OwnerSuperseded, Newer: live}, u.superseder.superseded)
}

// releaseFresh gives back m's claims of its tickets that are not stale,
// and of the backfill request it fills, if any: undone, it fills nothing.
// An error says a claim may be left m's (events.Claims.Release): whoever
// meets it follows m's decision, undone, and gives it back then
// (recoverMatch).
func (u undoer) releaseFresh(ctx context.Context, m events.Match, stale map[string]string) error {
	var keep []string
	for _, key := range m.ClaimKeys() {
		if _, gone := stale[key]; !gone {
			keep = append(keep, key)
		}
	}
	return u.claims.Release(ctx, keep, events.MatchOwner(m.MatchID))
}

// tellClaimed tells the players of pooled ticket e (of shard s, mode
// mode) the outcome of its claim, held by owner (with reason, if set:
// its claimer's own), unless they were told (events.Claims.Tell, which
// tells nothing for a match's claim, followed elsewhere by recoverMatch,
// or one given back). Its claimer may have failed to publish it (a
// frontend's expiry whose publish timed out under a partition) or died
// between the claim and the publish, and e's message, acked once this
// returns nil, is what leads anyone to the claim. A superseder tells its
// players before writing the newer ticket (events.Players.Take), but a
// Take that fails between the claim and the telling (NATS away, its
// request's context ended) writes nothing: e is still its players' live
// ticket, so no later Take of e tells them either, and e waits, pooled,
// until a match or its expiry meets the claim and tells them here. A
// superseded visitor is told by its home shard's copy.
func (f *matchState) tellClaimed(ctx context.Context, s events.Shard, mode string, e *pool.Entry, owner, reason string) error {
	if owner == events.OwnerSuperseded && e.Visitor {
		return nil
	}
	tl := events.Telling{Owner: owner, Reason: reason, Ticket: events.LiveTicket{TicketID: e.TicketID, Players: e.Players,
		Region: s.Region, Tier: cmp.Or(e.Tier, s.Tier), Mode: mode, CreatedAt: time.Unix(0, e.Created).UTC()}}
	if owner == events.OwnerSuperseded && len(e.Players) > 0 {
		// Named in the reason if it can be read; unread, the reason
		// says "a newer ticket".
		if live, err := f.players.Live(ctx, e.Players[0]); err == nil && live != e.TicketID {
			tl.Newer = live
		}
	}
	return f.claims.Tell(ctx, tl, f.undo.superseder.superseded)
}
