package matcher

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// Backfill: a running room with free seats asks, through the
// allocator, the shard that formed its match for players
// (events.Backfill, on the shard's own consumer of the BACKFILLS
// stream). The shard's owner holds each room's latest request (the
// highest Ask), unacked like a waiting ticket, and on its arrival and
// on every sweep tries to fill it from the pool of the room's mode
// (pool.Fill: the room stands as the anchor, so the mode's rules judge
// each ticket against it as against a match's anchor, and its players'
// tickets are passed over). What fits makes a match with
// Match.Backfill set, on the room's teams, committed as any match is
// (committer.commit) with one claim more: the request's
// (events.BackfillClaimKey), taken in the same ClaimAll as its
// tickets', so one request fills at most one match however many owners
// hold it at once (a shard moving), and no ticket is in two matches.
// After the commit the request's claim says what became of it
// (requestFate): it is acked once a match decided published holds it,
// or when it waited its mode's max wait; otherwise it stays and is
// tried again. A partial fill is a fill: the room asks again, under a
// new id, for the seats still free.

// heldBackfill is a request the runner holds (runner.backfills, by
// room: its MatchID). Only the runner's goroutine touches it.
type heldBackfill struct {
	req events.Backfill
	// ack is the reply subject of its message, seq its stream sequence
	// (a redelivery has the same; a second message for the same id,
	// stored again after the duplicate window, another).
	ack string
	seq uint64
	// filling is the match being committed to fill it, if any: the
	// request is not tried again until that commit settles.
	filling string
}

// backfillFate is what a commit of a match filling a request made of the
// request.
type backfillFate int

const (
	backfillOpen   backfillFate = iota // not filled: try again
	backfillFilled                     // a match holds its claim: ack it
)

// backfillSettled is a backfill match's commit's word on its request
// (id) of room.
type backfillSettled struct {
	room, id string
	fate     backfillFate
}

// isBackfill says whether msg came from the shard's backfill consumer:
// its filter is exactly this subject, which no ticket is published on.
func (r *runner) isBackfill(msg jetstream.Msg) bool {
	return msg.Subject() == r.subj.Backfill(r.shard.Region, r.shard.Tier)
}

// addBackfill takes a request in: a bad one is dead-lettered, one the
// runner holds already (a redelivery, or the same request stored again)
// is answered, one past its mode's max wait is acked, and any other is
// held and tried at once. A room's requests are held one at a time, the
// highest Ask (holdLatest).
func (r *runner) addBackfill(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		r.log.Error("backfill request without metadata; dropped", "err", err)
		_ = msg.Term()
		return
	}
	req, p, err := r.checkBackfill(msg.Data())
	if err != nil {
		r.rejectBackfill(ctx, msg, meta, err)
		return
	}
	h := r.holdLatest(req, msg.Reply(), meta.Sequence.Stream)
	if h == nil {
		return
	}
	now := r.now()
	if now.Sub(req.CreatedAt) >= time.Duration(p.Mode().MaxWait) {
		delete(r.backfills, req.MatchID)
		r.acks.ack(h.ack)
		r.met.backfills.WithLabelValues("expired").Inc()
		r.log.Info("backfill request past its mode's max wait; dropped", "backfill_id", req.BackfillID)
		return
	}
	r.met.backfills.WithLabelValues("held").Inc()
	r.log.Info("backfill request held", "backfill_id", req.BackfillID, "room", req.MatchID, "seats", req.Seats)
	r.fillBackfill(ctx, p, h, now)
}

// holdLatest holds request req (its message answered on ack, stream
// sequence seq) unless the runner holds the same one or a later one of
// its room, and returns it when it is newly held. A room asks anew, under
// a higher Ask, whenever its free seats change, and the allocator sends
// players only for a room's current request: an older one held beside it
// would fill seats the room no longer offers, and both could be filled
// at once. So the request of the higher Ask is held and the other acked
// (one being filled too: its fill goes on, and the allocator refuses it
// if the room has moved on).
func (r *runner) holdLatest(req events.Backfill, ack string, seq uint64) *heldBackfill {
	h, ok := r.backfills[req.MatchID]
	switch {
	case !ok:
	case h.req.BackfillID == req.BackfillID && h.seq == seq:
		h.ack = ack // a redelivery of the request held
		return nil
	case h.req.BackfillID == req.BackfillID || !newerAsk(req, h.req):
		r.acks.ack(ack) // the same request stored again, or an older one
		return nil
	default:
		r.acks.ack(h.ack)
		r.met.backfills.WithLabelValues("replaced").Inc()
		r.log.Info("backfill request let go: its room asks anew", "backfill_id", h.req.BackfillID, "room", req.MatchID, "now", req.BackfillID)
	}
	h = &heldBackfill{req: req, ack: ack, seq: seq}
	r.backfills[req.MatchID] = h
	return h
}

// newerAsk says whether a is a later request of its room than b: a
// higher Ask, or (from an allocator that sends no Ask) a later one.
func newerAsk(a, b events.Backfill) bool {
	if a.Ask != b.Ask {
		return a.Ask > b.Ask
	}
	return a.CreatedAt.After(b.CreatedAt)
}

// checkBackfill decodes a request and checks it against the shard and
// the mode, whose pool it returns.
func (r *runner) checkBackfill(data []byte) (events.Backfill, *pool.Pool, error) {
	req, err := events.DecodeBackfill(data)
	if err != nil {
		return req, nil, err
	}
	if req.Region != r.shard.Region || req.Tier != r.shard.Tier {
		return req, nil, backfillError("region", fmt.Sprintf("%s.%s is not the shard %s it was published to", req.Region, req.Tier, r.shard))
	}
	p, ok := r.pools[req.Mode]
	if !ok {
		return req, nil, backfillError("mode", fmt.Sprintf("unknown mode %q", req.Mode))
	}
	m := p.Mode()
	if !m.AcceptsBackfill {
		return req, nil, backfillError("mode", fmt.Sprintf("mode %q does not accept backfill", m.Name))
	}
	if len(req.Seats) != m.Teams {
		return req, nil, backfillError("seats", fmt.Sprintf("%d teams, mode %q has %d", len(req.Seats), m.Name, m.Teams))
	}
	for i, s := range req.Seats {
		if s > m.TeamSize {
			return req, nil, backfillError(fmt.Sprintf("seats[%d]", i), fmt.Sprintf("%d free seats on a team of %d", s, m.TeamSize))
		}
	}
	return req, p, nil
}

func backfillError(field, reason string) error {
	return &events.ValidationError{Kind: "backfill", Fields: []events.FieldError{{Field: field, Reason: reason}}}
}

// rejectBackfill dead-letters a request that can never be filled, off the
// runner's goroutine, and terminates it (or naks it for a retry when even
// the dead letter cannot be stored). No player is told: a request has
// none.
func (r *runner) rejectBackfill(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, cause error) {
	log := r.log.With("subject", msg.Subject(), "seq", meta.Sequence.Stream)
	r.in.rejecting.Add(1)
	go func() {
		defer r.in.rejecting.Done()
		pctx, cancel := context.WithTimeout(ctx, r.in.timeout)
		defer cancel()
		dl := events.NewDeadLetter(Source, msg.Subject(), meta.Sequence.Stream, msg.Data(), cause, r.now())
		dl.KeepMeta(events.MetaFromHeader(msg.Headers()))
		if err := r.in.pub.DeadLetter(pctx, dl); err != nil {
			log.Error("dead-letter a backfill request; will retry", "reason", cause, "err", err)
			nakLater(msg, nakDelay)
			return
		}
		log.Warn("backfill request dead-lettered", "reason", cause)
		_ = msg.TermWithReason(cause.Error())
	}()
}

// fillBackfills tries every held request not being filled: each sweep,
// before the oldest tickets are matched among themselves, so a running
// room is served first. A request past its mode's max wait, or whose
// mode a reloaded rule set took away or closed to backfill, is acked.
func (r *runner) fillBackfills(ctx context.Context, now time.Time) {
	for room, h := range r.backfills {
		if h.filling != "" {
			continue
		}
		p, ok := r.pools[h.req.Mode]
		outcome := "dropped" // a reloaded rule set took its mode away or closed it to backfill
		if ok && p.Mode().AcceptsBackfill {
			if now.Sub(h.req.CreatedAt) < time.Duration(p.Mode().MaxWait) {
				r.fillBackfill(ctx, p, h, now)
				continue
			}
			outcome = "expired"
		}
		delete(r.backfills, room)
		r.acks.ack(h.ack)
		r.met.backfills.WithLabelValues(outcome).Inc()
		r.log.Info("backfill request let go unfilled", "backfill_id", h.req.BackfillID, "room", room, "outcome", outcome)
	}
}

// anchor is the entry a request is filled around: the room's skill, its
// first ticket's attributes compiled for the pool's mode as a pooled
// ticket's are (SetAttributes: with their class, the pool's index passes
// over the classes the rules keep apart instead of judging each ticket),
// the room's players (no ticket of theirs fills it) and the request's
// wait. It is made anew for each try, as a reloaded rule set may have
// changed the mode, and never pooled.
func (h *heldBackfill) anchor(p *pool.Pool) (*pool.Entry, error) {
	a := &pool.Entry{TicketID: events.BackfillClaimKey(h.req.BackfillID), Skill: h.req.Skill,
		Created: h.req.CreatedAt.UnixNano(), Players: h.req.Players}
	return a, a.SetAttributes(p.Mode(), h.req.Attributes)
}

// fillBackfill fills what it can of request h from pool p and hands the
// match to a commit of its own, as formMatch does.
func (r *runner) fillBackfill(ctx context.Context, p *pool.Pool, h *heldBackfill, now time.Time) {
	anchor, err := h.anchor(p)
	if err != nil { // DecodeBackfill let through attributes that do not encode
		r.log.Error("backfill request's attributes; not filled", "backfill_id", h.req.BackfillID, "err", err)
		return
	}
	teams := p.Fill(anchor, h.req.Seats, now)
	if teams == nil {
		return
	}
	key := events.BackfillClaimKey(h.req.BackfillID)
	match := events.Match{Mode: p.Mode().Name, Region: r.shard.Region, Tier: r.shard.Tier, CreatedAt: now.UTC(),
		AcceptsBackfill: true, Backfill: &events.MatchBackfill{BackfillID: h.req.BackfillID, MatchID: h.req.MatchID}}
	// The request's claim is taken with the tickets' (ClaimAll), and its
	// message is part of the match's name: the same tickets filling
	// another request, or matched among themselves, are another match.
	keys := []string{events.MatchKey(key, h.seq)}
	var all []*pool.Entry
	for team, entries := range teams {
		for _, e := range entries {
			keys = append(keys, matchKey(e))
			all = append(all, e)
			r.inflight[e.TicketID] = e.Seq
			match.Tickets = append(match.Tickets, matchTicketOf(e, team))
		}
	}
	match.MatchID = r.matchID(keys)
	notices := r.matchedNotices(match.MatchID, all)
	r.stats.matched(match.Mode, all, now) // a backfilled ticket's wait counts as any matched one's
	ids := match.ClaimKeys()
	h.filling = match.MatchID
	r.log.Info("backfill request filled from the pool", "backfill_id", h.req.BackfillID, "room", h.req.MatchID,
		"match_id", match.MatchID, "tickets", len(all))
	links := waitedAll(ctx, all, now)
	r.makeRoom(ctx)
	r.committing++
	commits, claims, rec := r.commits, r.commits.claims, r.commits.rec
	go func() {
		var o commitOutcome
		commits.commitBatch(ctx, []formed{{p: p, match: match, ids: ids, all: all, notices: notices, now: now, links: links}}, nil,
			func(out commitOutcome) { o = out })
		fate := backfillOpen
		if len(o.retry) == 0 {
			// With tickets to retry, the commit could not decide the
			// match: the request is tried again, and that try's claims
			// meet this match's and settle it (recoverMatch).
			fate = requestFate(ctx, claims, rec, match.MatchID, key, commits.timeout)
		}
		o.backfill = &backfillSettled{room: h.req.MatchID, id: h.req.BackfillID, fate: fate}
		r.committed <- o
	}()
}

// requestFate reads, after the commit of match matchID, who holds the
// claim of its request (key) and what was decided of that match. A match
// decided published fills it (this one, or another that was out first):
// it is not recovered, for recovering a published match publishes it
// again, and, past the duplicate window, its players would hear
// "matched" and "assigned" twice. Another match, not decided yet (its
// matcher died or stalls between claiming and deciding) or decided
// undone, is recovered: decided and followed, it fills the request if it
// is out, and gives the claim back if it is undone. Anything else leaves
// the request open: no one holds the claim, this match is undecided (its
// commit lost tickets to other matches and gave its claims back) or
// undone, or a claim or decision cannot be read: the next try's ClaimAll
// meets the claim again and decides.
func requestFate(ctx context.Context, claims *events.Claims, rec *recoverer, matchID, key string, timeout time.Duration) backfillFate {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	owner, err := claims.Owner(cctx, key)
	if err != nil || owner == "" {
		return backfillOpen
	}
	id, isMatch := events.OwnerMatchID(owner)
	if !isMatch {
		return backfillFilled // no match's: not this shard's to fill
	}
	decision, err := rec.decisions.Decided(cctx, id)
	switch {
	case err != nil:
		return backfillOpen
	case decision == events.DecisionPublished:
		return backfillFilled
	case id != matchID && rec.recoverMatch(ctx, id, key) == recovered:
		return backfillFilled
	}
	return backfillOpen
}

// settleBackfill takes what a backfill match's commit made of its request
// back into the runner (settleCommit calls it for every commit).
func (r *runner) settleBackfill(o commitOutcome) {
	if o.backfill == nil {
		return
	}
	h, ok := r.backfills[o.backfill.room]
	if !ok || h.req.BackfillID != o.backfill.id {
		return // let go for a later request of the room meanwhile
	}
	h.filling = ""
	if o.backfill.fate == backfillFilled {
		delete(r.backfills, o.backfill.room)
		r.acks.ack(h.ack)
		r.met.backfills.WithLabelValues("filled").Inc()
		r.log.Info("backfill request done", "backfill_id", o.backfill.id, "room", h.req.MatchID)
	}
}

// releaseBackfills hands every held request back for the shard's next
// owner (the runner is stopping, its commits settled).
func (r *runner) releaseBackfills() {
	for room, h := range r.backfills {
		r.acks.handBack(h.ack)
		delete(r.backfills, room)
	}
}
