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
// their players waited for good, held by the claims (the frontend's
// expiry stops at a match's claim). The worker that decided a match
// knows it whatever the stream says, so it sends it itself once NATS
// answers again. Sending twice is safe: sendOnce reads the match's sent
// mark, and a send racing the next owner's recovery is stored once by
// the match's message ids. What a worker that dies holds is left to the
// tickets, as before.
type outbox struct {
	state *matchState
	met   *metrics
	log   *slog.Logger
	// nc is the worker's connection: a try waits for it to be connected,
	// so a long cut does not spend a publish timeout per match per try.
	nc *nats.Conn

	mu      sync.Mutex
	matches []unpublishedMatch
	// stopped: run has returned (the worker is stopping); what a runner
	// hands over then is only logged.
	stopped bool
}

// hold takes ums, a stopping runner's unsent matches, to be sent.
func (o *outbox) hold(ums []unpublishedMatch) {
	if len(ums) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stopped {
		o.leave(ums)
		return
	}
	o.matches = append(o.matches, ums...)
	o.log.Warn("matches decided published and not sent kept, to send after their shard was handed back", "matches", len(ums), "held", len(o.matches))
}

// leave logs ums, left unsent as the worker stops.
func (o *outbox) leave(ums []unpublishedMatch) {
	for _, um := range ums {
		o.log.Warn("match decided published left unsent at stop; its tickets' next owner sends it", "match_id", um.match.MatchID)
	}
}

// run tries the held matches every outboxRetry until ctx ends; what it
// holds then, or is handed later, is logged and left to the tickets'
// next owner.
func (o *outbox) run(ctx context.Context) {
	tick := time.NewTicker(outboxRetry)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			o.mu.Lock()
			defer o.mu.Unlock()
			o.stopped = true
			o.leave(o.matches)
			o.matches = nil
			return
		case <-tick.C:
			o.try(ctx)
		}
	}
}

// try sends each held match once; those that fail are kept.
func (o *outbox) try(ctx context.Context) {
	if !o.nc.IsConnected() {
		return
	}
	o.mu.Lock()
	ums := o.matches
	o.matches = nil
	o.mu.Unlock()
	var keep []unpublishedMatch
	for _, um := range ums {
		sent, err := o.state.sendOnce(events.WithMeta(ctx, um.meta), um.match)
		if err != nil {
			keep = append(keep, um)
			continue
		}
		if !sent {
			// Sent meanwhile by another: the next owner, meeting its
			// claims (recoverMatch). Not counted as formed here.
			o.log.Info("match held unsent found sent by another", "match_id", um.match.MatchID)
			continue
		}
		o.met.tickets.WithLabelValues("matched").Add(float64(len(um.entries)))
		o.met.matches.WithLabelValues(um.match.Mode).Inc()
		o.log.Info("match formed, sent after its shard was handed back", "match_id", um.match.MatchID, "mode", um.match.Mode,
			"tickets", len(um.entries), "correlation_id", um.meta.CorrelationID)
		o.state.sendMatchedNotices(ctx, um.match, um.notices)
	}
	o.mu.Lock()
	o.matches = append(keep, o.matches...)
	o.mu.Unlock()
}
