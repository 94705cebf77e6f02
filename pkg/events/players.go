package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LiveTicket is what the players bucket keeps per player: the one ticket
// of theirs that may still be matched, and what it takes to end it (its
// players to tell, its shard to send the cancel notice to).
type LiveTicket struct {
	TicketID  string    `json:"ticket_id"`
	Players   []string  `json:"players"`
	Region    string    `json:"region"`
	Tier      string    `json:"tier"`
	Mode      string    `json:"mode"`
	CreatedAt time.Time `json:"created_at"`
}

// olderThan reports whether t was created before o. Of two tickets created
// at the same instant, the one taken later is the player's live ticket.
func (t LiveTicket) olderThan(o LiveTicket) bool { return t.CreatedAt.Before(o.CreatedAt) }

// Players keeps one live ticket per player, whatever region, tier, mode or
// path (HTTP or NATS) each ticket of theirs came by. The players bucket
// maps a player id to that player's live ticket ([LiveTicket]); the claims
// bucket ([Claims]) still decides each ticket's one outcome, and its
// compare-and-set is the arbiter of every race below.
//
// Protocol. Take: a ticket B becomes a player's live ticket by a
// compare-and-set of the player's key on the revision it read (at time w).
// Before writing, it tries to claim the ticket A it replaces for
// [OwnerSuperseded] (at c_s < w); TakeFirst (and TakeFirstFresh,
// TakeLate) does not when A's claim is its
// match's, decided published, which would refuse it. A match commit claims
// its tickets (ClaimAll, at c_m), then reads their players' live tickets
// (Stale, at r > c_m) and decides the match ([Decisions]): undone if a
// ticket is no longer its players' live ticket, published otherwise. A
// worker that finds the match behind its claims (the matcher's
// recoverMatch: the matcher died, timed out, or is only slow) checks the
// same way, with every claim the match's, at a moment of its own. Two
// checks of one match may disagree (one reads before w, the other after),
// so the match is decided once: the first decision stored stands, and
// every decider, first or not, follows it. Published: the match is
// published (again, by a follower: its id makes that one match) and its
// claims stay its own. Undone: it is never published; its stale tickets'
// claims move from the match to superseded ([Claims.Supersede]), their
// players are told, and its other claims are given back. Nothing else
// gives a match's claims back without "undone": a worker releasing a dead
// matcher's partial claims decides it undone first (so that matcher, if it
// was only slow, follows instead of publishing), and a commit that cannot
// check or decide keeps its claims for whoever decides next. The
// exceptions hold no decided match: a ClaimAll that lost a ticket gives
// back what it claimed (another owner holds that ticket, so no check of
// the match passes with every claim its own), and the allocator gives back
// the claims of a published match when it requeues its tickets.
//
// Why a commit never publishes a ticket that stopped being live. Take A's
// commit, racing B's supersede:
//   - the supersede claims A first (A unclaimed at c_s): A is superseded
//     for good; the commit's ClaimAll loses A and gives back every claim
//     it made, and A's players are told "cancelled, superseded by B".
//   - a match holds A's claim at c_s: the supersede loses and B is
//     written anyway. That match (or a later one, if the claim is given
//     back: ClaimAll releasing a partial match, an allocator requeueing,
//     a match decided undone) is decided by the first check stored after
//     claiming. One that read before w decides it published: A was still
//     live when its match was formed, and the match stands (B is a ticket
//     of a player who asked again after being matched); a later check
//     that finds B follows and publishes too. One that read after w finds
//     B and decides it undone: A is superseded by the match's deciders,
//     A's players told, and a check that read before w follows, without
//     publishing. A claim given back while no later match forms around A
//     leaves A waiting, unchecked, until one does or it expires (one
//     outcome still, but late: B's supersede lost to the claim, and
//     nothing retries it).
//
// So a published match was checked, with all its claims held, at a moment
// when each of its tickets was its players' live ticket, and from then on
// the claims are the match's: undoing it would need the decision it
// already has. No ticket of it is told "cancelled" by an undo, and none
// is given back to be matched again but by the allocator's requeue.
//
// A ticket older than the live one (by created_at; a requeued ticket, or
// a redelivery of a ticket superseded while its message was out) never
// replaces it: Take claims it superseded instead. A ticket that is
// already decided is never made live again.
//
// Telling. Whoever moves a ticket's claim to superseded tells its players
// before it acks anything; if it dies first, the ticket's message comes
// back, and Take, finding the claim superseded, tells them then (the
// result's message id makes a repeat within the duplicate window one
// result). A superseder that fails between the claim and the telling
// (NATS away) has not written the newer ticket either, so Take still finds
// the old one live and does not look at its claim: the matcher that holds
// it tells its players when a match or its expiry meets the claim
// (matcher tellClaimed; a chaos run lost such tickets before). So a
// superseded ticket's players are told at least once, all of them
// through [Claims.Tell]: a telling is marked and whoever meets the claim
// later tells only if it is not, so past the duplicate window a second
// "cancelled" is heard only after a teller that could not mark. Any
// other outcome but a match's that Take meets (an expiry, a cancel,
// whose claimer's publish failed) is told the same way.
//
// Ticket ids. The claims are keyed by ticket id, so Take first binds the
// id to its ticket's players (a key "ticket.<id>" in the same bucket; a
// player id has no dot). A ticket with an id already bound to other
// players (a publisher reusing another player's id) is refused with
// ErrTicketIDTaken: it never becomes live, so no later ticket of its
// players supersedes, through that id, a ticket they do not own. An id
// the frontend made at random just now (TakeFirstFresh) cannot be bound
// before, so its bind is sent beside its first entry (createFresh).
type Players struct {
	kv     jetstream.KeyValue
	claims *Claims
	// decisions tell TakeFirst whether a match that claimed a player's
	// last ticket stands (see ended).
	decisions *Decisions
}

// NewPlayers binds to the provisioned players bucket.
func NewPlayers(ctx context.Context, js jetstream.JetStream, subj Subjects, claims *Claims) (*Players, error) {
	// Leader reads: a replica behind would name a ticket its player has
	// replaced since, and Stale would supersede the live one by it; and a
	// direct get can be sent to a replica cut off, which never answers
	// (Take's reads timed out that way). They cost the server more than
	// direct gets (BENCHMARKS.md, "The lean path").
	kv, err := BindLeaderGets(ctx, js, subj.PlayersBucket())
	if err != nil {
		return nil, fmt.Errorf("players bucket: %w", err)
	}
	decisions, err := NewDecisions(ctx, js, subj)
	if err != nil {
		return nil, err
	}
	return &Players{kv: kv, claims: claims, decisions: decisions}, nil
}

// ErrTicketIDTaken: the ticket's id is bound to a ticket of other players.
var ErrTicketIDTaken = errors.New("ticket id taken by a ticket of other players")

// Taken is what Take did.
type Taken struct {
	// Live: the ticket is now the live ticket of every one of its players.
	Live bool
	// Owner, when not Live, is who decided the ticket: OwnerSuperseded
	// (by a newer ticket of one of its players), or the owner of the claim
	// it already had (a match, a cancel, an expiry, a failure).
	Owner string
	// Superseded are the tickets this call ended (it won their claims).
	Superseded []LiveTicket
}

// SupersededFunc tells the players of old that their ticket is ended,
// superseded by the ticket newer ("" if not known). Claims.Tell calls it
// for a superseded ticket not told yet (Take, after winning old's claim
// and before it moves on); an error stops Take, and a retry calls it
// again (claiming is idempotent), so players are told at least once.
type SupersededFunc func(ctx context.Context, old LiveTicket, newer string) error

// Take makes t the live ticket of each of its players, superseding the
// ticket each had before (see [Players] for the protocol). tell tells
// the players of every ticket it ends, t itself included when t turns
// out older than a player's live ticket (through Claims.Tell). Take is
// idempotent: a redelivered or requeued t that is already live changes
// nothing.
func (p *Players) Take(ctx context.Context, t LiveTicket, tell SupersededFunc) (Taken, error) {
	return p.take(ctx, t, tell, takeMode{})
}

// takeMode is what a take keeps and what it may take for granted.
type takeMode struct {
	// keepUndecided: end no ticket not ended already (TakeFirst,
	// TakeFirstFresh, TakeLate).
	keepUndecided bool
	// writeFirst: t is a new ticket, whose players are often new too:
	// write each player's entry before reading it (createFirst).
	writeFirst bool
	// fresh: t's id was made at random just now and is published
	// nowhere yet, so no claim of it can exist to be read
	// (TakeFirstFresh), until an entry names it.
	fresh bool
}

// take is Take, TakeFirst, TakeFirstFresh and TakeLate, as mode says.
func (p *Players) take(ctx context.Context, t LiveTicket, tell SupersededFunc, mode takeMode) (Taken, error) {
	var out Taken
	value, err := json.Marshal(t)
	if err != nil {
		return out, fmt.Errorf("encode live ticket %s: %w", t.TicketID, err)
	}
	// The id is bound to its players before anything is written for it
	// (a fresh id's bind goes out beside its first entry: createFresh),
	// but only then: a ticket already live for these very players (the
	// matcher taking in a ticket its frontend took, a redelivery) was
	// bound before it was written, and costs one read per player.
	bound := false
	bind := func() error {
		if bound {
			return nil
		}
		bound = true
		return p.bind(ctx, t)
	}
	for i, player := range t.Players {
		if i > 0 {
			// An entry names t now: a newer ticket of that player
			// may have superseded it since, through that entry.
			mode.fresh = false
		}
		if mode.writeFirst {
			var written bool
			if mode.fresh { // the first player's: the id is not bound yet
				written, err = p.createFresh(ctx, t, player, value)
				bound = err == nil
			} else {
				written, err = p.createFirst(ctx, player, value, bind)
			}
			if err != nil {
				return out, err
			}
			if written {
				continue
			}
		}
		for {
			cur, rev, err := p.live(ctx, player)
			if err != nil {
				return out, err
			}
			if rev != 0 && cur.TicketID == t.TicketID && samePlayers(cur.Players, t.Players) {
				break // live already
			}
			if err := bind(); err != nil {
				return out, err
			}
			if rev != 0 && cur.TicketID == t.TicketID {
				break // live already (bound to these players; its entry is older)
			}
			if cur.TicketID != "" {
				if decided, err := p.replace(ctx, t, cur, tell, &out, mode); err != nil || decided {
					return out, err
				}
			}
			if rev == 0 {
				_, err = p.kv.Create(ctx, player, value)
			} else {
				_, err = p.kv.Update(ctx, player, value, rev)
			}
			if keyExists(err) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue // another ticket of the player got there first: look again
			}
			if err != nil {
				return out, fmt.Errorf("record live ticket of %s: %w", player, err)
			}
			break
		}
	}
	out.Live = true
	return out, nil
}

// replace ends cur so that t can take its place, or ends t if t is the
// older one, or finds t decided already. decided reports that t will not
// be live: out.Owner says why. mode.keepUndecided: an undecided cur is not
// ended but ErrWouldSupersede (TakeFirst, TakeFirstFresh, TakeLate).
func (p *Players) replace(ctx context.Context, t, cur LiveTicket, tell SupersededFunc, out *Taken, mode takeMode) (decided bool, err error) {
	if t.olderThan(cur) {
		_, owner, err := p.supersede(ctx, t, cur, tell)
		if err != nil {
			return false, err
		}
		out.Owner = owner
		return true, nil
	}
	// A ticket superseded (or otherwise decided) while one of its
	// messages was still out must not come back to life. A fresh id
	// (mode.fresh) has had no message out.
	var own string
	if !mode.fresh {
		if own, err = p.claims.Owner(ctx, t.TicketID); err != nil {
			return false, err
		}
	}
	if own != "" {
		// Whoever decided t may have died, or failed, before telling its
		// players (a commit's dropStale, a recovery, a frontend's expiry
		// whose publish timed out): tell them now, unless they were.
		if err := p.claims.Tell(ctx, Telling{Ticket: t, Owner: own, Newer: cur.TicketID}, tell); err != nil {
			return false, err
		}
		out.Owner = own
		return true, nil
	}
	if mode.keepUndecided {
		owner, err := p.ended(ctx, cur)
		if err != nil {
			return false, err
		}
		if _, byMatch := OwnerMatchID(owner); byMatch {
			// Its match is published: its claim stays the match's, so
			// superseding it would lose to the match (a refused create
			// and a read more, on every returning player's creation)
			// and tell nobody (Claims.Tell tells no match's ticket). A
			// claim the allocator gives back meanwhile leaves cur to be
			// taken in again, which finds t live and supersedes cur.
			return false, nil
		}
	}
	won, _, err := p.supersede(ctx, cur, t, tell)
	if err != nil {
		return false, err
	}
	if won {
		out.Superseded = append(out.Superseded, cur)
	}
	return false, nil
}

// supersede claims old for [OwnerSuperseded] and, if the claim is won,
// tells old's players that newer took its place. owner is old's claim
// owner either way; a claim lost to another outcome than a match is
// told too, if nobody did (Claims.Tell).
func (p *Players) supersede(ctx context.Context, old, newer LiveTicket, tell SupersededFunc) (won bool, owner string, err error) {
	won, owner, err = p.claims.Claim(ctx, old.TicketID, OwnerSuperseded)
	if err != nil {
		return won, owner, err
	}
	return won, owner, p.claims.Tell(ctx, Telling{Ticket: old, Owner: owner, Newer: newer.TicketID}, tell)
}

// samePlayers reports whether a and b name the same players, in any order.
func samePlayers(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// live reads a player's live ticket and the key's revision (0: none).
func (p *Players) live(ctx context.Context, player string) (LiveTicket, uint64, error) {
	e, err := p.kv.Get(ctx, player)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return LiveTicket{}, 0, nil
	}
	if err != nil {
		return LiveTicket{}, 0, fmt.Errorf("live ticket of %s: %w", player, err)
	}
	var t LiveTicket
	if err := json.Unmarshal(e.Value(), &t); err != nil {
		// Not ours to read: count the key as free, at its revision.
		return LiveTicket{}, e.Revision(), nil
	}
	return t, e.Revision(), nil
}

// Live returns a player's live ticket id, or "" (for tests and operators).
func (p *Players) Live(ctx context.Context, player string) (string, error) {
	t, _, err := p.live(ctx, player)
	return t.TicketID, err
}
