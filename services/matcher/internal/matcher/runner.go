package matcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/modes"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// runner owns one shard: its pools (one per mode) and everything done to
// them. Only its run goroutine touches them.
type runner struct {
	w     *Worker
	shard events.Shard
	log   *slog.Logger
	pools map[string]*pool.Pool
	// pending are matches whose tickets are claimed but whose publish
	// failed: they are retried as they are, with the same id.
	pending []pendingMatch
	// travellers are the waiting tickets that still have another region to
	// be offered to, so the sweep looks at them and not the whole pool.
	travellers []traveller
	// cancelled remembers recent cancel notices, for a ticket whose notice
	// arrives before the ticket does.
	cancelled map[string]time.Time
	// undone remembers recent matches a commit found undone by another
	// worker with none of their tickets stale (claims released as a dead
	// matcher's): the same tickets matched together again get a new id
	// (formMatch), since that match's decision stands for good.
	undone map[string]time.Time

	held atomic.Int64 // tickets in the pools at the last sweep

	// inflight are the tickets of formed matches whose claims and
	// publishes are under way (commit): out of the pools, not yet settled;
	// each with the stream sequence of its message.
	inflight map[string]uint64
	// committed receives each commit's outcome; committing counts the
	// commits whose outcome the runner has not taken yet (at most
	// maxInFlight, the channel's capacity, so a commit never blocks).
	committed  chan commitOutcome
	committing int

	// admitting are the tickets being taken as their players' live
	// ticket (events.Players: a few round trips, off this goroutine),
	// by id; admitted receives each outcome, and admissions counts those
	// the runner has not taken back yet (at most maxAdmitting).
	admitting  map[string]*pool.Entry
	admitted   chan admission
	admissions int

	inbox   chan jetstream.Msg
	cancels chan string
	stopC   chan struct{}
	done    chan struct{}
}

type traveller struct {
	p *pool.Pool
	e *pool.Entry
}

type pendingMatch struct {
	match   events.Match
	entries []*pool.Entry
}

// admission is what taking a ticket as its players' live ticket found.
type admission struct {
	p     *pool.Pool
	e     *pool.Entry
	taken events.Taken
	err   error
	// refused: the ticket's id is bound to other players; it was
	// dead-lettered and is terminated.
	refused bool
}

// maxAdmitting bounds the tickets of one shard being taken in at once.
const maxAdmitting = 256

// maxInFlight bounds the matches of one shard being committed at once. A
// commit is a few JetStream round trips (record, claims, results, match);
// with this many side by side a shard forms matches at this many times the
// rate one at a time would allow, and the owner goroutine never waits on
// the network to match.
const maxInFlight = 64

// commitOutcome is what became of a formed match: every entry is either
// settled (acked, by the commit) or handed back in retry or again.
type commitOutcome struct {
	p       *pool.Pool
	entries []*pool.Entry // every ticket of the match
	// pending: the tickets are claimed but the publish failed; the match
	// is retried as it is.
	pending *pendingMatch
	// retry: the claims could not be made (NATS is away); back in the pool
	// until the next sweep.
	retry []*pool.Entry
	// again: some tickets were decided elsewhere; these were not, and are
	// matched again at once.
	again []*pool.Entry
	// undone: the match was undone by another worker although none of its
	// tickets is stale; its id is not to be formed again (runner.undone).
	undone string
}

func newRunner(w *Worker, s events.Shard) *runner {
	r := &runner{
		w: w, shard: s, log: w.log.With("shard", s.String()), pools: map[string]*pool.Pool{}, cancelled: map[string]time.Time{}, undone: map[string]time.Time{},
		inbox: make(chan jetstream.Msg, 512), cancels: make(chan string, 256),
		inflight: map[string]uint64{}, committed: make(chan commitOutcome, maxInFlight),
		admitting: map[string]*pool.Entry{}, admitted: make(chan admission, maxAdmitting),
		stopC: make(chan struct{}), done: make(chan struct{}),
	}
	for name, m := range w.modes {
		r.pools[name] = pool.New(m)
	}
	return r
}

// waiting is how many tickets the runner's pools hold, as of its last
// sweep (read from other goroutines, so it is the metric's copy).
func (r *runner) waiting() int { return int(r.held.Load()) }

// stop ends the runner and waits until its tickets are handed back.
func (r *runner) stop() {
	close(r.stopC)
	<-r.done
}

// cancel asks the runner to drop a cancelled ticket.
func (r *runner) cancel(ticketID string) {
	select {
	case r.cancels <- ticketID:
	case <-r.stopC:
	}
}

func (r *runner) run(ctx context.Context) {
	defer close(r.done)
	ccs, err := r.start(ctx)
	if err != nil {
		return // stopped before it could start
	}
	tick := time.NewTicker(r.w.cfg.Sweep)
	defer tick.Stop()
	for {
		select {
		case <-r.stopC:
			for _, cc := range ccs {
				cc.Stop()
				<-cc.Closed()
			}
			for r.admissions > 0 {
				r.settleAdmission(ctx, <-r.admitted, false)
			}
			for r.committing > 0 {
				r.settle(ctx, <-r.committed, false)
			}
			r.release(ctx)
			return
		case o := <-r.committed:
			r.settle(ctx, o, true)
		case a := <-r.admitted:
			r.settleAdmission(ctx, a, true)
		case msg := <-r.inbox:
			r.add(ctx, msg)
		case id := <-r.cancels:
			r.dropCancelled(id)
		case now := <-tick.C:
			r.sweep(ctx, now)
		}
	}
}

// start resets the shard's consumers (its tickets and its visitors), so
// that what a previous owner held unacked comes back at once, and consumes
// them. It retries every second until it works or the runner is stopped:
// a held shard is never left unconsumed for good.
func (r *runner) start(ctx context.Context) ([]jetstream.ConsumeContext, error) {
	for {
		var ccs []jetstream.ConsumeContext
		var err error
		for _, c := range []struct{ stream, name string }{
			{r.w.subj.TicketsStream(), events.ShardConsumer(r.shard.Region, r.shard.Tier)},
			{r.w.subj.OfferStream(), events.OfferConsumer(r.shard.Region, r.shard.Tier)},
		} {
			var cc jetstream.ConsumeContext
			if cc, err = r.consume(ctx, c.stream, c.name); err != nil {
				break
			}
			ccs = append(ccs, cc)
		}
		if err == nil {
			r.log.Info("consuming shard")
			return ccs, nil
		}
		for _, cc := range ccs {
			cc.Stop()
		}
		r.log.Warn("start shard; retrying", "err", err)
		select {
		case <-r.stopC:
			return nil, errors.New("stopped")
		case <-time.After(time.Second):
		}
	}
}

func (r *runner) consume(ctx context.Context, stream, name string) (jetstream.ConsumeContext, error) {
	st, err := r.w.js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	if _, err := st.ResetConsumer(ctx, name); err != nil {
		return nil, fmt.Errorf("reset %s: %w", name, err)
	}
	cons, err := st.Consumer(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("bind %s: %w", name, err)
	}
	return cons.Consume(func(msg jetstream.Msg) {
		select {
		case r.inbox <- msg:
		case <-r.stopC:
			_ = msg.Nak() // the next owner takes it
		}
	}, jetstream.PullMaxMessages(1024), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		r.log.Warn("shard consume", "consumer", name, "err", err)
	}))
}

// release hands every held ticket back for the next owner, after one last
// try at publishing pending matches.
func (r *runner) release(ctx context.Context) {
	r.retryPending(ctx)
	for _, pm := range r.pending {
		// The match is decided published: its claims stay its own, and
		// the next owner, meeting them, publishes it (recoverMatch).
		for _, e := range pm.entries {
			r.w.nak(e.Ack)
		}
	}
	n := 0
	for name, p := range r.pools {
		p.Each(func(e *pool.Entry) { r.w.nak(e.Ack); n++ })
		r.w.met.waiting.DeleteLabelValues(r.shard.String(), name)
	}
	_ = r.w.nc.Flush()
	r.log.Info("shard released", "tickets_handed_back", n)
}

// add takes one ticket (or visitor) in and tries to match it at once.
func (r *runner) add(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		r.log.Error("ticket without metadata; dropped", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	var t events.Ticket
	var mode modes.Mode
	visitor := meta.Stream == r.w.subj.OfferStream()
	if visitor {
		t, mode, err = r.visitor(msg)
	} else {
		t, mode, err = r.w.decode(msg.Subject(), meta.Sequence.Stream, meta.Timestamp, msg.Data())
	}
	if err != nil {
		tmeta := events.MetaFromHeader(msg.Headers())
		log := r.log.With("subject", msg.Subject(), "seq", meta.Sequence.Stream, "correlation_id", tmeta.CorrelationID)
		r.w.reject(events.WithMeta(ctx, tmeta), log, msg, meta, t, err)
		return
	}
	seq := meta.Sequence.Stream
	if _, gone := r.cancelled[t.TicketID]; gone {
		r.w.ack(msg.Reply()) // cancelled before it got here
		return
	}
	if held, committing := r.inflight[t.TicketID]; committing {
		if held != seq {
			// Another message for a ticket being committed: a duplicate,
			// or the ticket queued again by an allocator that already
			// had its match. Which one shows once the commit settles: it
			// comes back then, and is held or dropped like any other.
			r.w.nak(msg.Reply())
		}
		return // a redelivery of a ticket in a match being committed, which acks it
	}
	if e, admitting := r.admitting[t.TicketID]; admitting {
		if e.Seq != seq {
			r.w.nak(msg.Reply()) // as for a ticket being committed
			return
		}
		e.Ack = msg.Reply() // a redelivery of the ticket being taken in
		return
	}
	p := r.pools[t.Mode]
	if e, ok := p.Get(t.TicketID); ok {
		if e.Seq != seq {
			r.duplicate(msg, t.TicketID)
			return
		}
		e.Ack = msg.Reply() // a redelivery of a ticket we hold
		return
	}
	now := r.w.now()
	e := &pool.Entry{TicketID: t.TicketID, Players: t.Players(), Skill: t.Skill, Created: t.CreatedAt.UnixNano(), Ack: msg.Reply(), Seq: seq, Visitor: visitor}
	if !visitor {
		for region, ms := range t.LatenciesMS {
			if region != r.shard.Region {
				e.Latencies = append(e.Latencies, pool.RegionLatency{Region: region, MS: ms})
			}
		}
	}
	if e.Waited(now) >= time.Duration(mode.MaxWait) {
		r.expire(ctx, e, mode)
		return
	}
	if visitor {
		// Its home shard took it in; its claim keeps it in one match.
		r.pool(ctx, p, e, now, true)
		return
	}
	r.admit(ctx, p, e, msg, t)
}

// admit takes a ticket in as the live ticket of its players, whatever
// shard, region or path their earlier tickets came by (events.Players):
// the player's earlier undecided ticket is superseded, its players told
// and every shard of its tier asked to drop it (worker.superseded). It
// runs off the owner goroutine; the ticket is pooled when it comes back
// live (settleAdmission). A commit checks again, after claiming, that
// each ticket is still live (events.Players says why both are needed).
// msg is nil for a ticket taken in again after a commit gave its claim
// back: its id is bound to its players already.
func (r *runner) admit(ctx context.Context, p *pool.Pool, e *pool.Entry, msg jetstream.Msg, t events.Ticket) {
	for r.admissions >= maxAdmitting {
		r.settleAdmission(ctx, <-r.admitted, true)
	}
	r.admitting[e.TicketID] = e
	r.admissions++
	lt := events.LiveTicket{TicketID: e.TicketID, Players: e.Players, Region: r.shard.Region, Tier: r.shard.Tier,
		Mode: p.Mode().Name, CreatedAt: time.Unix(0, e.Created).UTC()}
	go func() {
		tctx, cancel := context.WithTimeout(ctx, r.w.cfg.PublishTimeout)
		defer cancel()
		taken, err := r.w.players.Take(tctx, lt, r.w.superseded)
		refused := false
		if errors.Is(err, events.ErrTicketIDTaken) && msg != nil {
			// Its id is another player's ticket's (a publisher reusing
			// it): this is not that ticket, so it is dead-lettered
			// without touching that ticket's claim, and its own players
			// are told.
			meta := events.MetaFromHeader(msg.Headers())
			log := r.log.With("subject", msg.Subject(), "seq", e.Seq, "ticket_id", e.TicketID, "correlation_id", meta.CorrelationID)
			cause := fieldError("ticket_id", "already the id of a ticket of other players")
			err = r.w.deadLetter(events.WithMeta(ctx, meta), log, msg.Subject(), e.Seq, msg.Data(), t, cause, false)
			refused = err == nil
		}
		r.admitted <- admission{p: p, e: e, taken: taken, err: err, refused: refused}
	}()
}

// settleAdmission takes an admission's outcome back into the runner: the
// tickets it superseded leave this shard's pools at once (other shards
// hear the cancel notice), and the ticket is pooled if it is live.
func (r *runner) settleAdmission(ctx context.Context, a admission, match bool) {
	r.admissions--
	e := a.e
	delete(r.admitting, e.TicketID)
	for _, old := range a.taken.Superseded {
		r.dropCancelled(old.TicketID)
	}
	_, gone := r.cancelled[e.TicketID]
	_, inMatch := events.OwnerMatchID(a.taken.Owner)
	switch {
	case a.refused:
		r.w.term(e.Ack)
		return
	case a.err != nil:
		r.log.Warn("take ticket in as its players' live ticket; will retry", "ticket_id", e.TicketID, "err", a.err)
		r.w.nak(e.Ack)
		return
	case gone:
		r.w.ack(e.Ack) // cancelled or superseded while it was taken in
		return
	case !a.taken.Live && !inMatch:
		// Superseded by a newer ticket of a player (whoever did it told
		// the players), or decided before.
		r.w.ack(e.Ack)
		r.log.Info("ticket not live; dropped", "ticket_id", e.TicketID, "owner", a.taken.Owner)
		return
	}
	// Live, or already claimed by a match (a redelivery): a commit
	// settles the latter as before (recoverMatch).
	r.pool(ctx, a.p, e, r.w.now(), match)
}

// pool puts a ticket in its pool and, with match, matches around it.
func (r *runner) pool(ctx context.Context, p *pool.Pool, e *pool.Entry, now time.Time, match bool) {
	p.Add(e)
	if len(e.Latencies) > 0 {
		r.travellers = append(r.travellers, traveller{p: p, e: e})
	}
	r.w.met.tickets.WithLabelValues("pooled").Inc()
	if match {
		r.tryMatch(ctx, p, e, now)
	}
}

// visitor reads a ticket another shard offered (runner.offer wrote it).
func (r *runner) visitor(msg jetstream.Msg) (events.Ticket, modes.Mode, error) {
	t, err := events.DecodeTicket(msg.Data())
	if err != nil {
		return t, modes.Mode{}, err
	}
	mode, ok := r.w.modes[t.Mode]
	if !ok {
		// Only a config drift between workers gets here.
		return t, mode, fieldError("mode", fmt.Sprintf("unknown mode %q", t.Mode))
	}
	if t.TicketID == "" {
		return t, mode, fieldError("ticket_id", "missing in a visitor")
	}
	return t, mode, nil
}

// duplicate acks a second message for a ticket the shard already holds (a
// ticket id published twice): the first message stands for it.
func (r *runner) duplicate(msg jetstream.Msg, ticketID string) {
	r.w.ack(msg.Reply())
	r.w.met.tickets.WithLabelValues("duplicate").Inc()
	r.log.Info("second message for a waiting ticket; dropped", "ticket_id", ticketID, "subject", msg.Subject())
}

// tryMatch forms matches around anchor until none fits.
func (r *runner) tryMatch(ctx context.Context, p *pool.Pool, anchor *pool.Entry, now time.Time) {
	for p.Contains(anchor) {
		teams := p.MatchAround(anchor, now)
		if teams == nil {
			return
		}
		r.formMatch(ctx, p, teams, now)
	}
}

// formMatch hands a match, its tickets out of the pool, to a commit of its
// own, and goes on: the owner goroutine does not wait for JetStream. When
// maxInFlight commits are under way it first settles one.
func (r *runner) formMatch(ctx context.Context, p *pool.Pool, teams [][]*pool.Entry, now time.Time) {
	match := events.Match{Mode: p.Mode().Name, Region: r.shard.Region, Tier: r.shard.Tier, CreatedAt: now.UTC()}
	var ids, keys []string
	var all []*pool.Entry
	for team, entries := range teams {
		for _, e := range entries {
			ids = append(ids, e.TicketID)
			keys = append(keys, events.MatchKey(e.TicketID, e.Seq))
			all = append(all, e)
			r.inflight[e.TicketID] = e.Seq
			match.Tickets = append(match.Tickets, events.MatchTicket{TicketID: e.TicketID, Players: e.Players, Team: team, Skill: e.Skill, CreatedAt: time.Unix(0, e.Created).UTC()})
		}
	}
	match.MatchID = r.matchID(keys)
	for r.committing >= maxInFlight {
		// Without rematching: tickets put back wait for the next arrival or
		// sweep, so settling here never nests another formMatch.
		r.settle(ctx, <-r.committed, false)
	}
	r.committing++
	go func() { r.committed <- r.commit(ctx, p, match, ids, all, now) }()
}

// matchID names the match of the ticket messages keys: by MatchID, unless
// that match was undone with none of its tickets stale (runner.undone).
func (r *runner) matchID(keys []string) string {
	id := events.MatchID(keys)
	for {
		if _, gone := r.undone[id]; !gone {
			return id
		}
		id = events.MatchIDAfter(id, keys)
	}
}

// settle takes a commit's outcome back into the runner: tickets that must
// wait return to their pool, a match whose publish failed is kept for
// retry. With rematch, tickets whose partners were decided elsewhere are
// matched again at once.
func (r *runner) settle(ctx context.Context, o commitOutcome, rematch bool) {
	r.committing--
	for _, e := range o.entries {
		delete(r.inflight, e.TicketID)
	}
	if o.pending != nil {
		r.pending = append(r.pending, *o.pending)
	}
	if o.undone != "" {
		r.undone[o.undone] = r.w.now()
	}
	for _, e := range o.retry {
		o.p.Add(e)
	}
	if !rematch {
		// Without rematching (the owner is settling a commit to make
		// room, or stopping): back in the pool as they are; a later
		// commit's stale check still keeps a superseded one out.
		for _, e := range o.again {
			o.p.Add(e)
		}
		return
	}
	now := r.w.now()
	for _, e := range o.again {
		if e.Visitor {
			o.p.Add(e)
			r.tryMatch(ctx, o.p, e, now)
			continue
		}
		// Its claim was given back (a partner was decided elsewhere). A
		// newer ticket of its player may have been taken meanwhile, its
		// supersede losing to this match's claim: taken in again, it is
		// superseded now (and its players told) instead of waiting, not
		// live, until a partner or its expiry finds it.
		r.admit(ctx, o.p, e, nil, events.Ticket{})
	}
}

// commit claims, publishes and acks one match. It runs outside the owner
// goroutine and touches no runner state: what the runner must do comes
// back in the outcome.
func (r *runner) commit(ctx context.Context, p *pool.Pool, match events.Match, ids []string, all []*pool.Entry, now time.Time) commitOutcome {
	out := commitOutcome{p: p, entries: all}
	log := r.log.With("match_id", match.MatchID)
	cctx, cancel := context.WithTimeout(ctx, r.w.cfg.PublishTimeout)
	// The match is stored before its tickets are claimed: if this worker
	// dies (or stalls) between the claims and the publish, another finds
	// the match behind the claims and decides it (recoverMatch).
	data, _ := json.Marshal(match) // a Match always encodes
	_, err := r.w.matches.Put(cctx, match.MatchID, data)
	owner := events.MatchOwner(match.MatchID)
	var lost, stale map[string]string
	var decision events.Decision
	if err == nil {
		lost, err = r.w.claims.ClaimAll(cctx, ids, owner)
	}
	if err == nil && len(lost) == 0 && r.w.claimed != nil {
		r.w.claimed(match.MatchID)
	}
	if err == nil && len(lost) == 0 {
		// With every claim held: is each ticket still its players' live
		// ticket? (events.Players says why this check, after the claims,
		// is what keeps a superseded ticket out of every match.) Then the
		// match is decided, once: a worker recovering it may have checked
		// at another moment and decided first (events.Decisions).
		if stale, err = r.w.players.Stale(cctx, match.TicketPlayers()); err == nil {
			if r.w.checked != nil {
				r.w.checked(match.MatchID)
			}
			decision, err = r.w.decisions.Decide(cctx, match.MatchID, wanted(stale))
		}
		// On an error the claims stay the match's, undecided: given back,
		// they could free the tickets of a match a recovering worker has
		// just published. The tickets wait in the pool; whoever meets the
		// claims next (this match formed again, or recoverMatch) decides.
	}
	cancel()
	if err != nil {
		log.Error("claim match tickets; tickets kept", "err", err)
		out.retry = all
		return out
	}
	if decision == events.DecisionPublished && len(stale) > 0 {
		// A worker recovering the match checked before the newer ticket
		// was taken and published it: the match stands (events.Players).
		log.Info("match published by a recovering worker; followed", "stale", len(stale))
	}
	if decision == events.DecisionUndone {
		if len(stale) == 0 {
			// Undone by a worker that checked after this commit did (or
			// took its claims for a dead matcher's): look again, to undo
			// it as the winner does.
			cctx, cancel := context.WithTimeout(ctx, r.w.cfg.PublishTimeout)
			stale, err = r.w.players.Stale(cctx, match.TicketPlayers())
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
		return r.dropStale(ctx, log, match, all, stale, out)
	}
	if len(lost) > 0 {
		for _, e := range all {
			if owner, gone := lost[e.TicketID]; gone {
				if id, isMatch := events.OwnerMatchID(owner); isMatch && r.recoverMatch(ctx, id) != recovered {
					out.retry = append(out.retry, e) // the other match is not out yet, or was undone: try again later
					continue
				}
				if owner == events.OwnerSuperseded && !e.Visitor {
					// Whoever superseded it may have died before telling its
					// players: taken in again, Take tells them (at least
					// once; the result's message id makes a repeat one). A
					// visitor is not taken in: its home shard's copy is.
					r.w.nak(e.Ack)
					log.Info("ticket superseded; handed back to be told", "ticket_id", e.TicketID)
					continue
				}
				// Decided elsewhere (cancelled, or matched by another
				// owner): whoever won has told the players.
				r.w.ack(e.Ack)
				r.w.met.tickets.WithLabelValues("decided_elsewhere").Inc()
				log.Info("ticket already decided; dropped", "ticket_id", e.TicketID, "owner", owner)
				continue
			}
			out.again = append(out.again, e)
		}
		return out
	}
	if err := r.publishMatch(ctx, match); err != nil {
		log.Error("publish match; will retry it as it is", "err", err)
		out.pending = &pendingMatch{match: match, entries: all}
		return out
	}
	r.matched(match, all, now)
	return out
}

// wanted is the decision a check of a match's tickets asks for: undone if
// any is stale, published otherwise.
func wanted(stale map[string]string) events.Decision {
	if len(stale) > 0 {
		return events.DecisionUndone
	}
	return events.DecisionPublished
}

// dropStale undoes a match decided undone (it claimed a ticket no longer
// its players' live ticket): that ticket's claim moves to superseded and
// its players are told (the newer ticket's supersede found the claim
// taken), and the other tickets' claims are given back, so they are
// matched again at once. Only a commit that won or read the decision
// "undone" calls it.
func (r *runner) dropStale(ctx context.Context, log *slog.Logger, match events.Match, all []*pool.Entry, stale map[string]string, out commitOutcome) commitOutcome {
	owner := events.MatchOwner(match.MatchID)
	cctx, cancel := context.WithTimeout(ctx, r.w.cfg.PublishTimeout)
	defer cancel()
	var keep []string
	for _, t := range match.Tickets {
		if _, gone := stale[t.TicketID]; !gone {
			keep = append(keep, t.TicketID)
		}
	}
	r.w.claims.Release(cctx, keep, owner)
	for i, e := range all {
		live, gone := stale[e.TicketID]
		if !gone {
			out.again = append(out.again, e)
			continue
		}
		superseded, err := r.w.claims.Supersede(cctx, e.TicketID, owner)
		if err == nil && superseded {
			t := match.Tickets[i]
			err = r.w.superseded(cctx, events.LiveTicket{TicketID: t.TicketID, Players: t.Players, Region: r.shard.Region,
				Tier: r.shard.Tier, Mode: match.Mode, CreatedAt: t.CreatedAt}, live)
		}
		if err != nil {
			// Its message comes back; taken in again, it finds the newer
			// ticket and is superseded then.
			log.Error("supersede a ticket found no longer live; will retry", "ticket_id", e.TicketID, "err", err)
			r.w.claims.Release(cctx, []string{e.TicketID}, owner)
			r.w.nak(e.Ack)
			continue
		}
		r.w.ack(e.Ack)
		log.Info("ticket no longer its players' live ticket; match undone", "ticket_id", e.TicketID, "live", live)
	}
	return out
}

func (r *runner) matched(match events.Match, all []*pool.Entry, now time.Time) {
	lo, hi := events.MaxSkill, events.MinSkill
	for _, e := range all {
		r.w.ack(e.Ack)
		r.w.met.waitTime.Observe(now.Sub(time.Unix(0, e.Created)).Seconds())
		lo, hi = min(lo, e.Skill), max(hi, e.Skill)
	}
	r.w.met.spread.Observe(float64(hi - lo))
	r.w.met.tickets.WithLabelValues("matched").Add(float64(len(all)))
	r.w.met.matches.WithLabelValues(match.Mode).Inc()
	r.log.Info("match formed", "match_id", match.MatchID, "mode", match.Mode, "tickets", len(all), "skill_spread", hi-lo)
}

// publishMatch tells every player they are matched, then hands the match to
// the allocator. The match id is the message id, so a retry is stored once.
func (r *runner) publishMatch(ctx context.Context, match events.Match) error {
	pctx, cancel := context.WithTimeout(ctx, r.w.cfg.PublishTimeout)
	defer cancel()
	var rs []events.Result
	for _, t := range match.Tickets {
		for _, pl := range t.Players {
			rs = append(rs, events.Result{TicketID: t.TicketID, PlayerID: pl, Status: events.StatusMatched, MatchID: match.MatchID})
		}
	}
	// Every "matched" is stored before the match goes to the allocator,
	// so a player never sees "assigned" before "matched".
	if err := r.w.pub.Results(pctx, rs); err != nil {
		return err
	}
	return r.w.pub.Match(pctx, match)
}

func (r *runner) retryPending(ctx context.Context) {
	keep := r.pending[:0]
	for _, pm := range r.pending {
		if err := r.publishMatch(ctx, pm.match); err != nil {
			keep = append(keep, pm)
			continue
		}
		r.matched(pm.match, pm.entries, r.w.now())
	}
	r.pending = keep
}

// sweep expires, retries the oldest tickets with their widened windows,
// offers tickets to other regions, and retries pending matches.
func (r *runner) sweep(ctx context.Context, now time.Time) {
	r.retryPending(ctx)
	for id, at := range r.cancelled {
		if now.Sub(at) > time.Minute {
			delete(r.cancelled, id)
		}
	}
	for id, at := range r.undone {
		if now.Sub(at) > time.Minute {
			delete(r.undone, id) // if formed again, its commit learns it again
		}
	}
	total := 0
	defer func() { r.held.Store(int64(total)) }()
	r.offerTravellers(ctx, now)
	for name, p := range r.pools {
		mode := p.Mode()
		p.Expired(now, func(e *pool.Entry) { r.expire(ctx, e, mode) })
		for _, a := range p.Oldest(r.w.cfg.SweepAnchors) {
			if p.Contains(a) {
				r.tryMatch(ctx, p, a, now)
			}
		}
		r.w.met.waiting.WithLabelValues(r.shard.String(), name).Set(float64(p.Len()))
		total += p.Len()
	}
}

// offerTravellers offers waiting tickets to the regions their widened
// latency budget now reaches, and forgets tickets that left the pool or
// have been offered everywhere they could go.
func (r *runner) offerTravellers(ctx context.Context, now time.Time) {
	keep := r.travellers[:0]
	for _, t := range r.travellers {
		if !t.p.Contains(t.e) {
			continue
		}
		r.offer(ctx, t.e, t.p.Mode(), now)
		if slices.ContainsFunc(t.e.Latencies, func(l pool.RegionLatency) bool { return !l.Offered }) {
			keep = append(keep, t)
		}
	}
	clear(r.travellers[len(keep):]) // let the dropped entries go
	r.travellers = keep
}

// offer puts a ticket in the pool of every other region its latency budget
// now reaches, as a visitor: it may be matched there too, and the claims
// keep it in one match.
func (r *runner) offer(ctx context.Context, e *pool.Entry, mode modes.Mode, now time.Time) {
	budget := mode.LatencyMS.At(e.Waited(now))
	for i := range e.Latencies {
		l := &e.Latencies[i]
		if l.Offered || l.MS > budget {
			continue
		}
		t := events.Ticket{SchemaVersion: events.SchemaVersion, TicketID: e.TicketID, Mode: mode.Name, Skill: e.Skill, CreatedAt: time.Unix(0, e.Created).UTC()}
		if len(e.Players) == 1 {
			t.PlayerID = e.Players[0]
		} else {
			t.Party = e.Players
		}
		pctx, cancel := context.WithTimeout(ctx, r.w.cfg.PublishTimeout)
		msg, err := events.NewMsg(pctx, r.w.subj.Offer(l.Region, r.shard.Tier), e.TicketID+"-at-"+l.Region, t)
		if err == nil {
			msg.Header.Set(events.HeaderHome, r.shard.Region)
			_, err = r.w.js.PublishMsg(pctx, msg)
		}
		cancel()
		if err != nil {
			r.log.Warn("offer ticket to another region; will retry", "ticket_id", e.TicketID, "region", l.Region, "err", err)
			return
		}
		l.Offered = true
		r.log.Info("ticket offered to another region", "ticket_id", e.TicketID, "region", l.Region, "latency_ms", l.MS, "budget_ms", budget)
	}
}

func (r *runner) expire(ctx context.Context, e *pool.Entry, mode modes.Mode) {
	if e.Visitor {
		r.w.ack(e.Ack) // its home shard expires it and tells the players
		return
	}
	r.end(ctx, e, events.StatusExpired, events.OwnerExpired, fmt.Sprintf("no match within %s", time.Duration(mode.MaxWait)))
}

// dropCancelled removes a ticket the frontend cancelled. The frontend
// claimed it and told the player before it sent the notice.
func (r *runner) dropCancelled(ticketID string) {
	r.cancelled[ticketID] = r.w.now()
	for _, p := range r.pools {
		if e, ok := p.Remove(ticketID); ok {
			r.w.ack(e.Ack)
			r.w.met.tickets.WithLabelValues(string(events.StatusCancelled)).Inc()
			r.log.Info("cancelled ticket dropped", "ticket_id", ticketID)
		}
	}
}

// end claims a ticket for owner, tells its players and acks. A ticket whose
// claim another owner holds is acked silently: that owner told the players.
// If the claim or a result cannot be stored, the ticket is nakked, so the
// next try (or the next owner) tells them.
func (r *runner) end(ctx context.Context, e *pool.Entry, status events.Status, owner, reason string) {
	pctx, cancel := context.WithTimeout(ctx, r.w.cfg.PublishTimeout)
	defer cancel()
	won, cur, err := r.w.claims.Claim(pctx, e.TicketID, owner)
	if err == nil && !won {
		if id, isMatch := events.OwnerMatchID(cur); isMatch {
			switch r.recoverMatch(ctx, id) {
			case released: // the dead match is undone: claim again
				won, cur, err = r.w.claims.Claim(pctx, e.TicketID, owner)
			case pending:
				r.w.nak(e.Ack) // decide later, when the other match is out or undone
				return
			}
		}
	}
	if err != nil {
		r.log.Error("claim ticket; will retry", "ticket_id", e.TicketID, "err", err)
		r.w.nak(e.Ack)
		return
	}
	if !won {
		r.w.ack(e.Ack)
		r.log.Info("ticket already decided; dropped", "ticket_id", e.TicketID, "owner", cur)
		return
	}
	for _, pl := range e.Players {
		if err := r.w.pub.Result(pctx, events.Result{TicketID: e.TicketID, PlayerID: pl, Status: status, Reason: reason}); err != nil {
			r.log.Error("publish result; will retry", "ticket_id", e.TicketID, "err", err)
			r.w.nak(e.Ack)
			return
		}
	}
	r.w.ack(e.Ack)
	r.w.met.tickets.WithLabelValues(string(status)).Inc()
	r.log.Info("ticket ended", "ticket_id", e.TicketID, "status", status, "reason", reason)
}

type recovery int

const (
	recovered recovery = iota // the match is out: its tickets are decided
	released                  // a dead partial match was undone: tickets are free
	pending                   // undecided yet: look again later
)

// staleClaim is how old a match's record must be before its partial claims
// count as left by a dead matcher: a live ClaimAll takes milliseconds.
const staleClaim = 30 * time.Second

// recoverMatch settles a match found owning a ticket's claim. The matcher
// that formed it may have died between claiming and publishing, or be
// slow: so the match gets one decision (events.Decisions), and whoever
// decides second follows the first. Undecided, with every ticket claimed
// by it: the match is checked as its commit would (each ticket still its
// players' live ticket?) and decided published, or undone if a ticket is
// stale. Undecided with only some claimed and an old record: it died
// claiming, and is decided undone. Then the decision is followed:
// published, it is published (again: the match id makes that idempotent
// for the allocator and the players), or, with its claims partly gone
// (the allocator requeued it), the rest are given back as before; undone,
// its stale tickets' claims move to superseded and the others are given
// back (undoStale), and it counts as released. A match with no record
// (formed before records were kept, or expired) counts as decided.
func (r *runner) recoverMatch(ctx context.Context, matchID string) recovery {
	cctx, cancel := context.WithTimeout(ctx, r.w.cfg.PublishTimeout)
	defer cancel()
	e, err := r.w.matches.Get(cctx, matchID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return recovered
	}
	if err != nil {
		return pending
	}
	var m events.Match
	if json.Unmarshal(e.Value(), &m) != nil {
		return recovered
	}
	decision, err := r.w.decisions.Decided(cctx, matchID)
	if err != nil {
		return pending
	}
	owner := events.MatchOwner(matchID)
	all := true
	for _, t := range m.Tickets {
		cur, err := r.w.claims.Owner(cctx, t.TicketID)
		if err != nil {
			return pending
		}
		all = all && cur == owner
	}
	var stale map[string]string
	switch {
	case decision != "":
	case all:
		// The matcher that formed it may have died (or stalled) before
		// its check that each ticket is still its players' live ticket:
		// check as its commit would have (events.Players).
		if stale, err = r.w.players.Stale(cctx, m.TicketPlayers()); err != nil {
			return pending
		}
		if decision, err = r.w.decisions.Decide(cctx, matchID, wanted(stale)); err != nil {
			return pending
		}
	case r.w.now().Sub(e.Created()) < staleClaim:
		return pending
	default:
		// Partial claims of a matcher that died claiming: decided undone
		// before they are given back, so that matcher, if it was only
		// slow, follows instead of publishing.
		if decision, err = r.w.decisions.Decide(cctx, matchID, events.DecisionUndone); err != nil {
			return pending
		}
	}
	if decision == events.DecisionPublished {
		if !all {
			// Published, then some of its claims given back: the
			// allocator found no server and requeued its tickets (as new
			// messages), but could not give back every claim. Its claims
			// are the allocator's to give back now; finish that once it
			// had time to.
			if r.w.now().Sub(e.Created()) < staleClaim {
				return pending
			}
			rctx, rcancel := context.WithTimeout(ctx, r.w.cfg.PublishTimeout) // cctx served many round trips
			defer rcancel()
			ids := make([]string, 0, len(m.Tickets))
			for _, t := range m.Tickets {
				ids = append(ids, t.TicketID)
			}
			r.w.claims.Release(rctx, ids, owner)
			r.log.Warn("claims of a requeued match released", "match_id", matchID)
			return released
		}
		if err := r.publishMatch(ctx, m); err != nil {
			return pending
		}
		r.log.Info("match of another matcher published", "match_id", matchID)
		return recovered
	}
	if len(stale) == 0 {
		// Following a decision found made (or lost to one): which
		// tickets are stale? As the commit does when it follows one.
		// (Stale only grows: a ticket that stopped being live never is
		// again.)
		if stale, err = r.w.players.Stale(cctx, m.TicketPlayers()); err != nil {
			return pending
		}
	}
	if err := r.undoStale(ctx, m, stale); err != nil {
		r.log.Error("undo a match decided undone; will retry", "match_id", matchID, "err", err)
		return pending
	}
	r.log.Warn("match of another matcher undone", "match_id", matchID, "stale", len(stale))
	return released
}

// undoStale undoes a match decided undone for recoverMatch, as dropStale
// does for a commit: the stale tickets' claims move to superseded and
// their players are told, the other claims are given back (those of a
// dead matcher's partial claims, with no ticket stale: all of them). An error leaves the
// rest for the next try (a superseded claim stays superseded; a ticket
// whose players were not told is told when it comes back, by Take).
func (r *runner) undoStale(ctx context.Context, m events.Match, stale map[string]string) error {
	cctx, cancel := context.WithTimeout(ctx, r.w.cfg.PublishTimeout)
	defer cancel()
	owner := events.MatchOwner(m.MatchID)
	var keep []string
	var errs []error
	for _, t := range m.Tickets {
		live, gone := stale[t.TicketID]
		if !gone {
			keep = append(keep, t.TicketID)
			continue
		}
		superseded, err := r.w.claims.Supersede(cctx, t.TicketID, owner)
		if err == nil && superseded {
			err = r.w.superseded(cctx, events.LiveTicket{TicketID: t.TicketID, Players: t.Players, Region: m.Region,
				Tier: m.Tier, Mode: m.Mode, CreatedAt: t.CreatedAt}, live)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("supersede ticket %s: %w", t.TicketID, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	r.w.claims.Release(cctx, keep, owner)
	return nil
}
