package matcher

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// admission is what taking a ticket as its players' live ticket found.
type admission struct {
	p     *pool.Pool
	e     *pool.Entry
	taken events.Taken
	err   error
	// refused: the ticket's id is bound to other players; it was
	// dead-lettered and is terminated.
	refused bool
	// again: the ticket was taken in before, and given back by a commit
	// (its offers are queued already).
	again bool
	// late: the ticket came past its max wait, and was taken only if
	// that ended no other ticket of its players (TakeLate).
	late bool
}

// maxAdmitting bounds the tickets of one shard being taken in at once.
const maxAdmitting = 256

// add takes one ticket (or visitor) in and tries to match it at once.
func (r *runner) add(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		r.log.Error("ticket without metadata; dropped", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	var t events.Ticket
	var mode *rules.Mode
	r.syncRules() // the set the intake checks against is the pools'
	visitor := meta.Stream == r.subj.OffersStream()
	if visitor {
		t, mode, err = r.in.visitor(r.set, msg)
	} else {
		t, mode, err = r.in.decode(r.set, msg.Subject(), meta.Sequence.Stream, meta.Timestamp, msg.Data())
	}
	if errors.Is(err, errOtherRules) {
		r.acks.ack(msg.Reply()) // its home shard keeps it
		r.log.Warn("visitor not taken in", "ticket_id", t.TicketID, "err", err)
		return
	}
	if err != nil {
		tmeta := events.MetaFromHeader(msg.Headers())
		log := r.log.With("subject", msg.Subject(), "seq", meta.Sequence.Stream, "correlation_id", tmeta.CorrelationID)
		r.in.reject(events.WithMeta(ctx, tmeta), log, r.ends.rec, msg, meta, t, err)
		return
	}
	seq := meta.Sequence.Stream
	if r.ended.has(t.TicketID) {
		r.acks.ack(msg.Reply()) // ended before it got here
		// Logged: a chaos run lost a ticket with no trace past a nak
		// (BENCHMARKS, "Eighteenth round"); every ack leaves one now.
		r.log.Info("ended ticket dropped as it came", "ticket_id", t.TicketID, "seq", seq)
		return
	}
	p := r.pools[t.Mode]
	if r.holds(msg, p, t.TicketID, seq) {
		return
	}
	now := r.now()
	e, err := r.entry(t, mode, msg.Reply(), seq, visitor)
	if err != nil {
		r.log.Error("ticket not pooled", "ticket_id", t.TicketID, "err", err)
		r.acks.term(msg.Reply())
		return
	}
	e.Trace = ticketTrace(msg.Headers(), now)
	// A ticket that comes past its max wait (delivered late: a shard
	// moved, a consumer reset, a cluster without quorum for a while) is
	// pooled like any other, and the next sweep expires it unless a
	// match takes it first, as it does a ticket that reached its max
	// wait in the pool. Expired here at once, the tickets of such a
	// burst were each told "expired" beside partners that came in the
	// same second (chaos seed 30: 36 in one second). But not a visitor
	// (its home shard has expired it, or will before a match commits),
	// nor one decided while on its way, one whose take would end a
	// player's other ticket still waiting, or one whose take fails
	// (late: intake.take reads its claim and takes with TakeLate;
	// settleAdmission expires those).
	late := e.Waited(now) >= time.Duration(mode.MaxWait)
	if late && visitor {
		r.ends.expire(ctx, e, mode)
		return
	}
	if visitor {
		// Its home shard took it in; its claim keeps it in one match.
		r.pool(ctx, p, e, now, true)
		return
	}
	r.admit(ctx, p, e, msg, meta, t, late)
}

// holds answers a message of a ticket the shard holds already (being
// committed, being taken in, or pooled), and reports whether it did.
func (r *runner) holds(msg jetstream.Msg, p *pool.Pool, ticketID string, seq uint64) bool {
	if _, committing := r.inflight[ticketID]; committing {
		// Another message for a ticket being committed (a duplicate, or
		// the ticket queued again by an allocator that already had its
		// match), or its own message again: a consumer reset gave it
		// anew. Either comes back once the commit settles, and is held
		// or dropped like any other. Its own message must too: the
		// commit answers the delivery it was matched from, which the
		// server may no longer honour for a nak (after a reset it counts
		// delivery sequences from one again), so without this nak a
		// ticket the commit hands back (retry, again, a stop) would
		// wait out the pool's AckWait. An ack by the commit still
		// counts, and ends this delivery too.
		r.acks.nak(msg.Reply())
		return true
	}
	if e, admitting := r.admitting[ticketID]; admitting {
		if e.Seq != seq {
			r.acks.nak(msg.Reply()) // as for a ticket being committed
			return true
		}
		e.Ack = msg.Reply() // a redelivery of the ticket being taken in
		return true
	}
	if e, ok := p.Get(ticketID); ok {
		if e.Seq != seq {
			if r.copies.checkingCopy(ticketID) {
				r.acks.nak(msg.Reply()) // it may be all that is left of the ticket then
				return true
			}
			r.duplicate(msg, ticketID)
			return true
		}
		e.Ack = msg.Reply() // a redelivery of a ticket we hold
		return true
	}
	return false
}

// entry is ticket t as mode's pool keeps it. Every region it reported is
// kept in Latencies, so that a match or an offer carries them on; those
// it is not to be offered to (its own shard's region, and every region of
// a visitor, which its home shard offers) are marked offered. A visitor
// from another tier keeps its own tier (Tier), so that a requeue goes
// back to its own shard.
func (r *runner) entry(t events.Ticket, mode *rules.Mode, ack string, seq uint64, visitor bool) (*pool.Entry, error) {
	e := &pool.Entry{TicketID: t.TicketID, Players: t.Players(), Skill: t.Skill, Created: t.CreatedAt.UnixNano(), Ack: ack, Seq: seq, Visitor: visitor}
	for region, ms := range t.LatenciesMS {
		e.Latencies = append(e.Latencies, pool.RegionLatency{Region: region, MS: ms, Offered: visitor || region == r.shard.Region})
	}
	if home, ok := r.in.tiers.For(t.Skill); visitor && ok && home != r.shard.Tier {
		e.Tier = home
	}
	// An error is an attribute Check would have refused: the ticket can
	// never be pooled.
	return e, e.SetAttributes(mode, t.Attributes)
}

// matchTicketOf is pooled ticket e as a ticket of a match, on team: with
// everything a requeue or an offer of it needs to be judged again as it
// was (its latencies, its attributes, its own tier). It is entry's
// inverse.
func matchTicketOf(e *pool.Entry, team int) events.MatchTicket {
	mt := events.MatchTicket{TicketID: e.TicketID, Players: e.Players, Team: team, Skill: e.Skill,
		CreatedAt: time.Unix(0, e.Created).UTC(), Tier: e.Tier}
	if len(e.Latencies) > 0 {
		mt.LatenciesMS = make(map[string]int, len(e.Latencies))
		for _, l := range e.Latencies {
			mt.LatenciesMS[l.Region] = l.MS
		}
	}
	mt.Attributes, _ = e.Attributes() // SetAttributes wrote them
	return mt
}

// admit takes a ticket in as the live ticket of its players, whatever
// shard, region or path their earlier tickets came by (events.Players):
// the player's earlier undecided ticket is superseded, its players told
// and every shard of its tier asked to drop it (superseder). It runs off
// the owner goroutine (intake.take); the ticket is pooled when it comes
// back live (settleAdmission). A commit checks again, after claiming, that
// each ticket is still live (events.Players says why both are needed).
// A ticket sealed by the frontend that took it first (intake.takenFirst)
// is pooled at once, without a read. msg is nil for a ticket taken in
// again after a commit gave its claim back: its id is bound to its
// players already (and meta, its message's metadata, nil).
func (r *runner) admit(ctx context.Context, p *pool.Pool, e *pool.Entry, msg jetstream.Msg, meta *jetstream.MsgMetadata, t events.Ticket, late bool) {
	if msg != nil && !late && r.in.takenFirst(r.log, msg, meta, r.feed.sealFloor.Load()) {
		// Its frontend took it first and sealed it a moment ago: live,
		// as a read of its players' entries would find, or superseded
		// since, which the cancel notice, or a match's claim or check,
		// finds, as after a read. Counted as admitting for
		// settleAdmission, which undoes it at once.
		r.admitting[e.TicketID] = e
		r.admissions++
		r.settleAdmission(ctx, admission{p: p, e: e, taken: events.Taken{Live: true}}, true)
		return
	}
	for r.admissions >= maxAdmitting {
		r.settleAdmission(ctx, <-r.admitted, true)
	}
	r.admitting[e.TicketID] = e
	r.admissions++
	lt := events.LiveTicket{TicketID: e.TicketID, Players: e.Players, Region: r.shard.Region, Tier: r.shard.Tier,
		Mode: p.Mode().Name, CreatedAt: time.Unix(0, e.Created).UTC()}
	go func() {
		taken, refused, err := r.in.take(ctx, r.log, lt, msg, e.Seq, t, late)
		r.admitted <- admission{p: p, e: e, taken: taken, err: err, refused: refused, again: msg == nil, late: late}
	}()
}

// sealFresh is how long after JetStream stored a sealed ticket its seal
// is trusted. A first delivery follows the frontend's take by
// milliseconds; a later one (a backlog) may come after the ticket was
// superseded, which the read drops at once and a trusted seal would pool
// and offer until a match's claim met it (review R9). It also keeps a
// trusted ticket far inside its entries' life (events.RecordTTL, 1.5 h,
// against a max wait of at most events.TicketMaxAge): Stale counts a
// player with no entry as live, so a sealed ticket must never outlive
// the entries its take first wrote. Only a cost rides on the clocks: a
// matcher behind the NATS server trusts older seals, one ahead fewer.
const sealFresh = 5 * time.Second

// takenFirst reports whether msg carries the seal of a frontend that took
// its ticket first (events.HeaderTaken: its id bound to its players and
// each player's entry naming it) and was never delivered before: its
// first delivery since the shard's tickets consumer was last reset, and
// stored after that reset (above floor, feed.sealFloor: a reset counts
// deliveries from one again, so a previous owner's ticket comes back as
// a first delivery, review R10), and fresh (sealFresh). Then the ticket
// is taken in without a read. A seal that does not verify is counted
// and, the first time, logged: frontends and matchers with different
// keys read every ticket.
func (in *intake) takenFirst(log *slog.Logger, msg jetstream.Msg, meta *jetstream.MsgMetadata, floor uint64) bool {
	seal := msg.Headers().Get(events.HeaderTaken)
	if seal == "" {
		return false
	}
	if !in.seals.Verify(msg.Subject(), msg.Data(), seal) {
		in.met.seals.WithLabelValues("unverified").Inc()
		in.unverified.Do(func() {
			log.Warn("a ticket's seal does not verify with this matcher's -seal-key-file: the frontend's keys differ, "+
				"or a publisher without them set it; such tickets are read (logged once, counted in quickmatch_matcher_seals_total)",
				"subject", msg.Subject())
		})
		return false
	}
	if meta.NumDelivered != 1 || meta.Sequence.Stream <= floor || in.now().Sub(meta.Timestamp) > in.fresh {
		in.met.seals.WithLabelValues("old").Inc()
		return false
	}
	in.met.seals.WithLabelValues("trusted").Inc()
	return true
}

// settleAdmission takes an admission's outcome back into the runner: the
// tickets it superseded leave this shard's pools at once (other shards
// hear the cancel notice), and the ticket is pooled if it is live.
func (r *runner) settleAdmission(ctx context.Context, a admission, match bool) {
	r.admissions--
	e := a.e
	delete(r.admitting, e.TicketID)
	for _, old := range a.taken.Superseded {
		r.dropEnded(old.TicketID)
	}
	gone := r.ended.has(e.TicketID)
	_, inMatch := events.OwnerMatchID(a.taken.Owner)
	switch {
	case a.refused:
		r.acks.term(e.Ack)
		return
	case a.late && a.err != nil && !errors.Is(a.err, events.ErrTicketIDTaken):
		// Ended as it came, as before late tickets were pooled: one
		// with an outcome already (told as its claimer decided), one
		// that would end a player's other ticket still waiting (a late
		// ticket is no reason to), and one whose take NATS did not
		// answer (the players bucket without a leader, while a nak
		// would bring it back later still). Not one whose id another
		// player's ticket holds: its claim is that ticket's.
		r.log.Info("late ticket not taken in; expired as it came", "ticket_id", e.TicketID, "err", a.err)
		r.ends.expire(ctx, e, a.p.Mode())
		return
	case a.err != nil:
		r.log.Warn("take ticket in as its players' live ticket; will retry", "ticket_id", e.TicketID, "err", a.err)
		r.acks.nak(e.Ack)
		return
	case gone:
		r.acks.ack(e.Ack) // ended (cancelled, expired, superseded) while it was taken in
		r.log.Info("ticket ended while taken in; dropped", "ticket_id", e.TicketID)
		return
	case !a.taken.Live && !inMatch:
		// Superseded by a newer ticket of a player (whoever did it told
		// the players), or decided before.
		r.acks.ack(e.Ack)
		r.log.Info("ticket not live; dropped", "ticket_id", e.TicketID, "owner", a.taken.Owner)
		return
	}
	// Live, or already claimed by a match (a redelivery): a commit
	// settles the latter as before (recoverMatch).
	if !e.Visitor && !a.again {
		r.queueOffers(a.p, e)
	}
	r.pool(ctx, a.p, e, r.now(), match)
}

// pool puts a ticket in its pool and, with match, matches around it. A
// ticket a matched notice named before it came waits unmatched until its
// claim is read (checkNoted).
func (r *runner) pool(ctx context.Context, p *pool.Pool, e *pool.Entry, now time.Time, match bool) {
	p.Add(e)
	r.met.tickets.WithLabelValues("pooled").Inc()
	if r.checkNoted(ctx, p, e) {
		return
	}
	if match {
		r.tryMatch(ctx, p, e, now)
	}
}

// duplicate acks a second message for a ticket the shard already holds (a
// ticket id published twice): the first message stands for it. Not while
// a matched notice's claim read of the first is under way (add).
func (r *runner) duplicate(msg jetstream.Msg, ticketID string) {
	r.acks.ack(msg.Reply())
	r.met.tickets.WithLabelValues("duplicate").Inc()
	r.log.Info("second message for a waiting ticket; dropped", "ticket_id", ticketID, "subject", msg.Subject())
}

// dropEnded removes a ticket a cancel notice names: one the frontend
// cancelled or expired, or one a newer ticket of its players superseded.
// Whoever sent the notice claimed the ticket and told its players first.
func (r *runner) dropEnded(ticketID string) {
	r.ended.put(ticketID, struct{}{}, r.now())
	for _, p := range r.pools {
		if e, ok := p.Remove(ticketID); ok {
			r.acks.ack(e.Ack)
			if !e.Visitor { // a visitor is counted in its home shard
				r.met.tickets.WithLabelValues(string(events.StatusCancelled)).Inc()
			}
			r.log.Info("cancelled ticket dropped", "ticket_id", ticketID, "visitor", e.Visitor)
		}
	}
}
