package matcher

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/modes"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// offerer offers a shard's waiting tickets to the same tier of other
// regions, as visitors (events.Publisher.Offer).
type offerer struct {
	pub     *events.Publisher
	shard   events.Shard
	timeout time.Duration
	log     *slog.Logger
}

// offerDue offers waiting tickets to the regions their widened
// latency budget now reaches, and forgets tickets that left the pool or
// have been offered everywhere they could go.
func (r *runner) offerDue(ctx context.Context, now time.Time) {
	keep := r.toOffer[:0]
	for _, t := range r.toOffer {
		if !t.p.Contains(t.e) {
			continue
		}
		r.offers.offer(ctx, t.e, t.p.Mode(), now)
		if slices.ContainsFunc(t.e.Latencies, func(l pool.RegionLatency) bool { return !l.Offered }) {
			keep = append(keep, t)
		}
	}
	clear(r.toOffer[len(keep):]) // let the dropped entries go
	r.toOffer = keep
}

// offer offers a ticket to the shard of every other region its latency
// budget now reaches, as a visitor: it may be matched there too, and the
// claims keep it in one match. It marks each region offered in
// e.Latencies.
func (o *offerer) offer(ctx context.Context, e *pool.Entry, mode modes.Mode, now time.Time) {
	budget := mode.LatencyMS.At(e.Waited(now))
	for i := range e.Latencies {
		l := &e.Latencies[i]
		if l.Offered || l.MS > budget {
			continue
		}
		t := events.TicketFor(e.TicketID, mode.Name, e.Skill, time.Unix(0, e.Created).UTC(), e.Players)
		pctx, cancel := context.WithTimeout(ctx, o.timeout)
		err := o.pub.Offer(pctx, events.Shard{Region: l.Region, Tier: o.shard.Tier}, o.shard.Region, t)
		cancel()
		if err != nil {
			o.log.Warn("offer ticket to another region; will retry", "ticket_id", e.TicketID, "region", l.Region, "err", err)
			return
		}
		l.Offered = true
		o.log.Info("ticket offered to another region", "ticket_id", e.TicketID, "region", l.Region, "latency_ms", l.MS, "budget_ms", budget)
	}
}
