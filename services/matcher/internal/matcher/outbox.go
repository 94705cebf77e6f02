package matcher

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// outboxRetry is how often the outbox tries its matches again: as often
// as a runner's sweep tries its own, about.
const outboxRetry = time.Second

// outbox keeps sending the matches decided published that a runner could
// not send before it handed its shard back (runner.release), until each
// is sent.
//
// Before, such a match was left to its tickets: they are nakked at the
// release, and the next owner, meeting a claim of the match, sends it
// (recoverMatch). That holds only while the tickets are in the stream. A
// chaos run (BENCHMARKS.md, "Chaos, seed 31") lost four matches whose
// tickets were gone from it, by a cause not found: nobody sent them, and
// their players waited behind the claims. The worker that decided a
// match knows it whatever the stream says, so it sends it itself once
// NATS answers again. Sending twice is safe: sendOnce reads the match's
// sent mark, and a send racing the next owner's recovery is stored once
// by the match's message ids. A match the worker could not send before
// it stopped, or held by a worker that died, is found by a frontend's
// expiry (events.Publisher.TicketForUnsent).
type outbox struct {
	state *matchState
	met   *metrics
	log   *slog.Logger
	// nc is the worker's connection: a try waits for it to be connected,
	// so a long cut does not spend a publish timeout per match per try.
	nc *nats.Conn
	// now is the worker's clock (Worker.clock).
	now func() time.Time

	mu sync.Mutex
	// matches are the matches kept, by id: a match handed over twice (a
	// shard taken back and handed back again) is kept once.
	matches map[string]unpublishedMatch
	// stopped: run has returned (the worker is stopping); what a runner
	// hands over then is only logged.
	stopped bool
}

func newOutbox(state *matchState, met *metrics, log *slog.Logger, nc *nats.Conn, now func() time.Time) *outbox {
	return &outbox{state: state, met: met, log: log, nc: nc, now: now, matches: map[string]unpublishedMatch{}}
}

// add keeps ums, a stopping runner's unsent matches, to be sent.
func (o *outbox) add(ums []unpublishedMatch) {
	if len(ums) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stopped {
		for _, um := range ums {
			o.leave(um)
		}
		return
	}
	for _, um := range ums {
		o.matches[um.match.MatchID] = um
	}
	o.met.outbox.Set(float64(len(o.matches)))
	o.log.Warn("matches decided published and unsent kept, to send after their shard was handed back", "matches", len(ums), "kept", len(o.matches))
}

// leave logs um, left unsent as the worker stops.
func (o *outbox) leave(um unpublishedMatch) {
	o.log.Error("match decided published left unsent at stop; a frontend's expiry of its tickets finds it", "match_id", um.match.MatchID)
}

// run tries the kept matches every outboxRetry until ctx ends, then once
// more within the publish timeout (the worker's shards are handed back by
// then: Worker.Run ends it after them); what is still unsent, or is
// handed over later, is logged.
func (o *outbox) run(ctx context.Context) {
	tick := time.NewTicker(outboxRetry)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.state.timeout)
			o.try(last)
			cancel()
			o.mu.Lock()
			defer o.mu.Unlock()
			o.stopped = true
			for _, um := range o.matches {
				o.leave(um)
			}
			clear(o.matches)
			o.met.outbox.Set(0)
			return
		case <-tick.C:
			o.try(ctx)
		}
	}
}

// try sends each kept match once; those that fail stay, unless they are
// older than a ticket can live (events.TicketMaxAge): their claims and
// sent marks expire soon after, and a send then could be a second one.
func (o *outbox) try(ctx context.Context) {
	if !o.nc.IsConnected() {
		return
	}
	o.mu.Lock()
	ums := make([]unpublishedMatch, 0, len(o.matches))
	for _, um := range o.matches {
		ums = append(ums, um)
	}
	o.mu.Unlock()
	for _, um := range ums {
		if ctx.Err() != nil {
			return
		}
		sent, err := o.state.sendOnce(events.WithMeta(ctx, um.meta), um.match)
		if err != nil && o.now().Sub(um.match.CreatedAt) < events.TicketMaxAge {
			continue
		}
		o.mu.Lock()
		delete(o.matches, um.match.MatchID)
		o.met.outbox.Set(float64(len(o.matches)))
		o.mu.Unlock()
		switch {
		case err != nil:
			o.log.Error("match decided published never sent; given up", "match_id", um.match.MatchID, "err", err)
		case !sent:
			// Sent meanwhile by another: the next owner, meeting its
			// claims (recoverMatch). Not counted as formed here.
			o.log.Info("match kept unsent found sent by another", "match_id", um.match.MatchID)
		default:
			spread := o.met.formed(um.match.Mode, um.entries, o.now())
			o.log.Info("match formed, sent after its shard was handed back", "match_id", um.match.MatchID, "mode", um.match.Mode,
				"tickets", len(um.entries), "skill_spread", spread, "ticket_ids", ticketIDs(um.entries), "correlation_id", um.meta.CorrelationID)
			o.state.sendMatchedNotices(ctx, um.match, um.notices)
		}
	}
}
