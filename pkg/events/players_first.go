package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrWouldSupersede: TakeFirst (TakeFirstFresh, TakeLate) met a player's
// undecided ticket, which making the ticket live would end.
var ErrWouldSupersede = errors.New("a player's undecided ticket would be superseded")

// TakeFirst is Take for a ticket not queued yet, made live before it is
// so that its shard's owner, taking it in, finds it live already instead
// of racing this take with its own (the frontend's creations). It ends
// no ticket that has not ended already (see ended): superseding one ends
// it for good, and a ticket not queued yet may still fail to be, which
// would leave a player who had a ticket waiting with none. On meeting
// one it stops with ErrWouldSupersede; its caller then queues the ticket
// first and Takes it after, as every other path does. What it wrote
// before it stopped (the id bound, another player of a party made live)
// is what that Take writes too, if the queue succeeds; if it fails, those
// players' entries name a ticket never queued, which ended nothing of
// theirs, until their next ticket replaces it. Each player's entry is
// written before it is read (createFirst): a new player's costs no read.
func (p *Players) TakeFirst(ctx context.Context, t LiveTicket, tell SupersededFunc) (Taken, error) {
	return p.take(ctx, t, tell, takeMode{keepUndecided: true, writeFirst: true})
}

// TakeFirstFresh is TakeFirst for a ticket whose id was made at random
// just now and is published nowhere yet (the frontend's creations without
// a key or a chosen id): no claim of that id can exist before an entry
// names it, so a returning player's creation does not read one (a leader
// read less: BENCHMARKS.md, "Ninth round"). An id a client chose, or
// derived from a key, may be one a ticket had before, whose claim still
// stands: TakeFirst reads it.
func (p *Players) TakeFirstFresh(ctx context.Context, t LiveTicket, tell SupersededFunc) (Taken, error) {
	return p.take(ctx, t, tell, takeMode{keepUndecided: true, writeFirst: true, fresh: true})
}

// TakeLate is TakeFirst for a queued ticket that came past its max wait
// (the matcher's late tickets): it ends no ticket not ended already
// either, but reads each player's entry first, as Take does, for such a
// ticket is usually live already (its frontend took it first): writing
// first would cost it a refused bind and a refused write per player.
func (p *Players) TakeLate(ctx context.Context, t LiveTicket, tell SupersededFunc) (Taken, error) {
	return p.take(ctx, t, tell, takeMode{keepUndecided: true})
}

// ended returns the owner of cur's claim if cur, a player's live ticket,
// has an outcome that no newer ticket can change, and ErrWouldSupersede if
// making another ticket live could still end it: unclaimed (waiting), or
// claimed by a match not decided published (being committed, its matcher
// dead mid-commit, or undone and about to give cur back). Such a match's
// check, finding cur no longer live, would undo it and supersede cur by a
// ticket whose creation may yet fail (review R1 of the keyed take first).
// A decision it cannot read is ErrWouldSupersede too (with the read's
// error): the caller then queues first, which needs no decision, rather
// than fail a returning player's creation while the matches bucket is
// away. Cost: a returning player's TakeFirst reads cur's claim (one read
// more than Take), and after a match its decision (one more), but then
// does not try to supersede cur, which its match's claim would refuse
// (replace).
//
// Not covered: the tickets of a published match can still be given back
// to wait (the allocator requeues a match it cannot place, a backfill
// whose room is gone; a recovery gives back the rest of a published
// match's claims once the allocator requeued part of it). If that happens
// to cur after a TakeFirst whose ticket then failed to queue, a matcher
// taking cur in again finds the newer ticket live and supersedes cur by
// it: cur's players are told "superseded" and must ask again (review R2).
func (p *Players) ended(ctx context.Context, cur LiveTicket) (owner string, err error) {
	owner, err = p.claims.Owner(ctx, cur.TicketID)
	if err != nil {
		return "", err
	}
	match, byMatch := OwnerMatchID(owner)
	if byMatch {
		d, err := p.decisions.Decided(ctx, match)
		if err != nil {
			return "", fmt.Errorf("ticket %s (%q): %w (%w)", cur.TicketID, owner, ErrWouldSupersede, err)
		}
		if d == DecisionPublished {
			return owner, nil
		}
	}
	if owner == "" || byMatch {
		return "", fmt.Errorf("ticket %s (%q): %w", cur.TicketID, owner, ErrWouldSupersede)
	}
	return owner, nil
}

// createFirst writes value as player's entry if the player has none (no
// message on the key, not even a delete marker), binding t's id first as
// take does: the write take makes after reading no entry, without the
// read. written is false, with no error, if the key has a message: take
// reads it then, as it always did. For the frontend's creations
// (TakeFirst, TakeFirstFresh): a new ticket, whose player is often new
// too (every player on a game's first day), saves a leader read, a
// JetStream API request, where a returning player's costs a refused
// write more (BENCHMARKS.md, "Ninth round").
func (p *Players) createFirst(ctx context.Context, player string, value []byte, bind func() error) (written bool, err error) {
	if err := bind(); err != nil {
		return false, err
	}
	// Update at revision 0, not Create: a Create refused reads the key
	// (a direct get) to learn whether a delete marker is all it holds.
	_, err = p.kv.Update(ctx, player, value, 0)
	if keyExists(err) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record live ticket of %s: %w", player, err)
	}
	return true, nil
}

// createFresh is createFirst for a fresh id (TakeFirstFresh): the id's
// bind and the player's entry are sent together and awaited together
// (CreateAll), one round trip where createFirst makes two, one after the
// other. On this machine a round trip costs the server and the frontend
// more in wakes than in work (BENCHMARKS.md, "Twelfth round").
//
// Binding first keeps a ticket whose id is bound to other players (an id
// a client chose, or one it repeats) from ever being named by an entry.
// A fresh id was made at random just now and is published nowhere, so no
// bind of it can come before this one, and the entry need not wait for
// the bind. A bind that fails (NATS away, or never sent: a send that
// fails does not stop the next) beside an entry stored takes the entry
// back, so that an entry names an id bound to its players or none at
// all; if that fails too (best effort), the entry names a ticket never
// queued and bound to nobody, its id known to no one, until the
// player's next ticket replaces it. A bind refused (the id bound
// already: never, for an id made at random) is checked as bind checks
// it, and an id bound to other players takes back the entry written
// beside it, which was the player's first (created where no message
// was).
func (p *Players) createFresh(ctx context.Context, t LiveTicket, player string, value []byte) (written bool, err error) {
	bound, err := boundValue(t)
	if err != nil {
		return false, err
	}
	errs := CreateAll(ctx, p.kv, []KVWrite{{Key: ticketKey(t.TicketID), Value: bound}, {Key: player, Value: value}})
	// The entry may be stored unless it was refused: an error of another
	// kind (a timeout) may have come after the server stored it.
	mayBeStored := !keyExists(errs[1])
	switch {
	case keyExists(errs[0]):
		if err := p.bind(ctx, t); err != nil {
			if mayBeStored {
				p.unname(context.WithoutCancel(ctx), player, t.TicketID)
			}
			return false, err
		}
	case errs[0] != nil:
		// The bind lost on the way, or never sent, beside an entry that
		// may be stored: take it back, so that every entry names an id
		// bound to its players, as take's shortcut for a ticket live
		// already assumes (review R12).
		if mayBeStored {
			p.unname(context.WithoutCancel(ctx), player, t.TicketID)
		}
		return false, fmt.Errorf("bind ticket %s to its players: %w", t.TicketID, errs[0])
	}
	switch {
	case keyExists(errs[1]):
		return false, nil
	case errs[1] != nil:
		return false, fmt.Errorf("record live ticket of %s: %w", player, errs[1])
	}
	return true, nil
}

// unname deletes player's entry if it names ticketID, at the revision
// read: a newer entry written since stays. Best effort: an entry left
// names a ticket never queued, which the player's next ticket replaces.
func (p *Players) unname(ctx context.Context, player, ticketID string) {
	ctx, cancel := context.WithTimeout(ctx, ClaimCallTimeout)
	defer cancel()
	cur, rev, err := p.live(ctx, player)
	if err != nil || rev == 0 || cur.TicketID != ticketID {
		return
	}
	_ = p.kv.Delete(ctx, player, jetstream.LastRevision(rev))
}
