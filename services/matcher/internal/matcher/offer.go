package matcher

import (
	"container/heap"
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// offerer offers a shard's waiting tickets as visitors
// (events.Publisher.Offer) to the other shards they may be matched in
// too: the shard of the same tier in each other region their latency
// budget reaches, and the shard of the neighbouring tier in their own
// region once their skill window crosses their tier's bound (so 1199 in
// bronze and 1200 in silver meet). Each is offered to each shard once;
// the claims keep a ticket in at most one match wherever its copies
// wait, exactly as for a ticket matched in its own shard.
type offerer struct {
	pub   *events.Publisher
	shard events.Shard
	// below and above are the neighbouring tiers of the shard's.
	below, above neighbour
	timeout      time.Duration
	log          *slog.Logger
}

// newOfferer makes the offerer of w's shard s.
func newOfferer(w *Worker, s events.Shard, log *slog.Logger) *offerer {
	below, above := neighbours(w.cfg.Tiers, s.Tier)
	return &offerer{pub: w.pub, shard: s, below: below, above: above, timeout: w.cfg.PublishTimeout, log: log}
}

// neighbour is a neighbouring tier and the bound a skill window crosses
// to reach it: the shard's own tier's lowest skill (below: the window
// reaches under it), or the next tier's lowest (above: the window reaches
// it). tier is empty when there is none.
type neighbour struct {
	tier  string
	bound int
}

// neighbours finds the tiers next to tier.
func neighbours(tiers events.Tiers, tier string) (below, above neighbour) {
	for i, t := range tiers {
		if t.Name != tier {
			continue
		}
		if i > 0 {
			below = neighbour{tier: tiers[i-1].Name, bound: t.Min}
		}
		if i+1 < len(tiers) {
			above = neighbour{tier: tiers[i+1].Name, bound: tiers[i+1].Min}
		}
	}
	return below, above
}

// maxOffersPerSweep bounds the offers one sweep publishes. They are
// published side by side, so a sweep waits about one round trip for
// all of them; a shard whose tickets all cross a bound at once spreads
// them over a few sweeps rather than stalling its matching.
const maxOffersPerSweep = 256

// queueOffers queues the offers of a ticket just pooled in its own shard
// (not a visitor: its home shard offers it). A ticket with nowhere it
// could ever go is not queued.
func (r *runner) queueOffers(p *pool.Pool, e *pool.Entry) {
	it := &offerItem{p: p, e: e, belowDone: r.offers.below.tier == "", aboveDone: r.offers.above.tier == ""}
	if due, ok := r.offers.due(it, p.Mode()); ok {
		it.due = due
		heap.Push(&r.toOffer, it)
	}
}

// offerDue offers the waiting tickets whose next offer is due to every
// shard their widened latency budget and skill window now reach, and
// forgets tickets that left for good, are expiring or have nowhere left
// to go. A ticket being committed or taken in again keeps its place: its
// commit may give it back to the pool.
func (r *runner) offerDue(ctx context.Context, now time.Time) {
	var batch []plannedOffer
	var offered []*offerItem
	for len(batch) < maxOffersPerSweep {
		it, ok := r.toOffer.due(now.UnixNano())
		if !ok {
			break
		}
		if !it.p.Contains(it.e) {
			if r.inflight[it.e.TicketID] == it.e.Seq || r.admitting[it.e.TicketID] == it.e {
				it.due = now.Add(r.sweepEvery).UnixNano()
				offered = append(offered, it)
			}
			continue
		}
		mode := it.p.Mode()
		if it.e.Waited(now) >= time.Duration(mode.MaxWait) {
			continue // this sweep matches it (matchDue) or expires it
		}
		batch = r.offers.plan(it, mode, now, batch)
		offered = append(offered, it)
	}
	r.offers.send(ctx, batch)
	for _, it := range offered {
		due, more := r.offers.due(it, it.p.Mode())
		if !more {
			continue
		}
		// Not before the next sweep: an offer that failed, or a limit a
		// rounding left a hair short, waits for it.
		it.due = max(due, it.due, now.Add(r.sweepEvery).UnixNano())
		heap.Push(&r.toOffer, it)
	}
}

// rescheduleOffers computes every queued ticket's due time again, after
// a new rule set changed its mode's widening.
func (r *runner) rescheduleOffers() {
	q := r.toOffer[:0]
	for _, it := range r.toOffer {
		if due, ok := r.offers.due(it, it.p.Mode()); ok {
			it.due = due
			q = append(q, it)
		}
	}
	clear(r.toOffer[len(q):])
	r.toOffer = q
	heap.Init(&r.toOffer)
}

// due is when the first of the offers it still has to make opens by
// mode's widening, and false when none ever will.
func (o *offerer) due(it *offerItem, mode *rules.Mode) (int64, bool) {
	var first time.Duration = math.MaxInt64
	for _, l := range it.e.Latencies {
		if !l.Offered {
			first = min(first, reachedAfter(mode.LatencyMS, l.MS))
		}
	}
	if !it.belowDone {
		first = min(first, reachedAfter(mode.Skill, it.e.Skill-o.below.bound+1))
	}
	if !it.aboveDone {
		first = min(first, reachedAfter(mode.Skill, o.above.bound-it.e.Skill))
	}
	if first == math.MaxInt64 {
		return 0, false
	}
	return it.e.Created + int64(first), true
}

// reachedAfter is the wait after which w reaches limit, or MaxInt64 for
// never.
func reachedAfter(w rules.Widening, limit int) time.Duration {
	switch {
	case limit <= w.Initial:
		return 0
	case limit > w.Max || w.PerSecond <= 0:
		return math.MaxInt64
	}
	return time.Duration(math.Ceil(float64(limit-w.Initial) / float64(w.PerSecond) * float64(time.Second)))
}

// plannedOffer is one offer of a ticket to a shard, marked made (done)
// when planned and marked back if its publish fails.
type plannedOffer struct {
	t    events.Ticket
	to   events.Shard
	done *bool
	why  string // for the log
}

// plan appends to batch the offers of it that its latency budget and
// skill window open at now and were not made yet, marking each made.
func (o *offerer) plan(it *offerItem, mode *rules.Mode, now time.Time, batch []plannedOffer) []plannedOffer {
	e := it.e
	waited := e.Waited(now)
	var t *events.Ticket
	add := func(to events.Shard, done *bool, why string) {
		if t == nil {
			tk := events.TicketFor(matchTicketOf(e, 0), mode.Name)
			t = &tk
		}
		*done = true
		e.Offered = true // for good: a publish that fails may be stored all the same
		batch = append(batch, plannedOffer{t: *t, to: to, done: done, why: why})
	}
	budget := mode.LatencyMS.At(waited)
	for i := range e.Latencies {
		if l := &e.Latencies[i]; !l.Offered && l.MS <= budget {
			add(events.Shard{Region: l.Region, Tier: o.shard.Tier}, &l.Offered, "latency budget reaches the region")
		}
	}
	window := mode.Skill.At(waited) // at most the skill range (rules.Widening.within)
	if !it.belowDone && e.Skill-window < o.below.bound {
		add(events.Shard{Region: o.shard.Region, Tier: o.below.tier}, &it.belowDone, "skill window crosses the tier's bound")
	}
	if !it.aboveDone && e.Skill+window >= o.above.bound {
		add(events.Shard{Region: o.shard.Region, Tier: o.above.tier}, &it.aboveDone, "skill window crosses the tier's bound")
	}
	return batch
}

// send publishes the planned offers side by side and waits for them all;
// one whose publish failed is marked not made, to be tried again at a
// later sweep. The publishes touch no runner state: the marks are set
// back here, on the runner's goroutine, once all have returned.
func (o *offerer) send(ctx context.Context, batch []plannedOffer) {
	if len(batch) == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	for i := range batch {
		wg.Go(func() { errs[i] = o.pub.Offer(pctx, batch[i].to, o.shard.Region, batch[i].t) })
	}
	wg.Wait()
	for i, po := range batch {
		if errs[i] != nil {
			*po.done = false
			o.log.Warn("offer ticket to another shard; will retry", "ticket_id", po.t.TicketID, "to", po.to.String(), "err", errs[i])
			continue
		}
		o.log.Info("ticket offered to another shard", "ticket_id", po.t.TicketID, "to", po.to.String(), "why", po.why)
	}
}
