package results

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// What the subscription missed is read back from the RESULTS stream: the
// results published while the connection was down (core NATS keeps
// nothing for a subscriber that is away), and those nats.go dropped when
// Run's channel was full. Before #20 the frontend's per-ticket
// subscriptions missed these too, and a waiter heard nothing until its
// ticket's expiry.
//
// A catch-up asks, for every tracked ticket, where it stands now, not
// what was published since a point in time: RESULTS keeps each player's
// results on the player's own subject, and a ticket's newest result for
// one of its players is the last message on that player's subject,
// unless the player has a newer ticket since. So the catch-up reads the
// last result of every tracked player, each player of a party's ticket
// (members.go) on its own ("last by subject"), and for a ticket whose player's
// last result is another ticket's, asks the tickets service (Outcomes:
// the ticket's claim and the player's stored results, tickets/read.go).
// What it reads is handed to Run like what it hears: a status a ticket
// already has is ignored, so reading one twice costs nothing.
//
// Why not a time window (read everything since a little before the last
// result heard, as the first version did): its start came from this
// process's clock, compared with the stream leader's timestamps (a
// frontend clock ahead by more than the margin skipped results), and
// from when Run took a message, not when it came (Run behind its channel
// by more than the margin skipped results); it read every player's
// results, not the tracked ones (a slow consumer read back twice what
// was published). Reading by player needs no clock and reads what
// tracked tickets need: its cost is one get per tracked player, sent
// catchUpBatch at a time, all of a batch sent before any answer is
// awaited.
//
// Why the leader: the reads are message gets (events.LeaderReader), which
// only the stream leader answers. A direct get is answered by any
// replica, and the replica of the node the frontend reconnected to may
// not have the results stored while it was cut off: it answers "nothing
// more", and the catch-up would end without them. A leader that cannot
// be reached fails the catch-up, which is tried again at the next tick.
//
// One catch-up runs at a time; one asked for meanwhile, or one that
// failed, starts at the next tick. It needs no consumer (the frontend's
// NATS user may create none on RESULTS), only message gets, which it
// may make. With nothing tracked, nothing is read.

const (
	// catchUpBatch is how many players' last results are asked for at
	// once: a tick's worth of gets for 50,000 tracked tickets is 50
	// batches of round trips, not 50,000.
	catchUpBatch = 1000
	// catchUpCall bounds the wait for one batch, and one Outcomes call.
	catchUpCall = 5 * time.Second
)

// Outcomes reads the most advanced result of a ticket for a player of it
// whose last result (at stream sequence last, 0 if none) belongs to
// another ticket: nil if it has none. The tickets service's
// OutcomeBehind.
type Outcomes func(ctx context.Context, ticketID, player string, last uint64) (*events.Result, error)

// ReadOutcomesWith sets how a catch-up reads a ticket that its player's
// last result does not tell about. Without one, such a ticket learns its
// outcome from its expiry.
func (t *Tracker) ReadOutcomesWith(f Outcomes) { t.outcomes.Store(&f) }

// caughtResult is a result a catch-up read, for Run.
type caughtResult struct {
	player string
	res    events.Result
}

// statusChanged notes that the connection went down, and catches up
// once it is back.
func (t *Tracker) statusChanged(ctx context.Context, s *state, st nats.Status) {
	switch st {
	case nats.RECONNECTING, nats.DISCONNECTED:
		s.down = true
	case nats.CONNECTED:
		if s.down {
			s.down = false
			t.catchUp(ctx, s, "reconnect")
		}
	}
}

// checkDropped counts the results nats.go dropped since the last tick,
// and catches up if there are any; it also starts a catch-up that is
// due.
func (t *Tracker) checkDropped(ctx context.Context, s *state, sub *nats.Subscription) {
	if n, err := sub.Dropped(); err == nil && n > s.dropped {
		t.met.dropped.Add(float64(n - s.dropped))
		t.log.Warn("results dropped: the tracker fell behind its subscription; reading them from the stream", "dropped", n-s.dropped)
		t.catchUp(ctx, s, "dropped")
		s.dropped = n
	}
	if s.due != "" && !s.catching && t.nc.IsConnected() {
		reason := s.due
		s.due = ""
		t.catchUp(ctx, s, reason)
	}
}

// catchUp starts reading where every tracked ticket stands, or leaves
// it due if a catch-up is in flight (the tickets tracked by then are
// read too).
func (t *Tracker) catchUp(ctx context.Context, s *state, reason string) {
	if len(s.byPlayer) == 0 {
		return
	}
	if s.catching {
		if s.due == "" {
			s.due = reason
		}
		return
	}
	s.catching = true
	t.met.catchUps.WithLabelValues(reason).Inc()
	// Run's maps are Run's: the catch-up reads a copy.
	tracked := make(map[string][]string, len(s.byPlayer))
	for player, ts := range s.byPlayer {
		for id, tk := range ts {
			if !tk.allIn() { // one whose every outcome is in has nothing to catch up
				tracked[player] = append(tracked[player], id)
			}
		}
	}
	go func() {
		err := t.readTracked(ctx, tracked)
		select {
		case t.caughtUp <- err:
		case <-ctx.Done():
		}
	}()
}

// caughtUpEnded lets the next catch-up start; one that failed is due
// again at the next tick.
func (t *Tracker) caughtUpEnded(s *state, err error) {
	s.catching = false
	if err == nil || errors.Is(err, context.Canceled) {
		return // done, or Run is ending
	}
	t.log.Warn("reading missed results from the stream failed; trying again", "err", err)
	if s.due == "" {
		s.due = "retry"
	}
}

// readTracked reads where the tickets of tracked (player -> ticket ids)
// stand and hands their results to Run. A failed read does not stop the
// others: the first error is returned once all were tried.
func (t *Tracker) readTracked(ctx context.Context, tracked map[string][]string) error {
	players := make([]string, 0, len(tracked))
	for p := range tracked {
		players = append(players, p)
	}
	var first error
	for batch := range slices.Chunk(players, catchUpBatch) {
		subjects := make([]string, len(batch))
		for i, p := range batch {
			subjects[i] = t.subj.Result(p)
		}
		cctx, cancel := context.WithTimeout(ctx, catchUpCall)
		lasts, errs := t.reader.Lasts(cctx, t.subj.ResultsStream(), subjects)
		cancel()
		for i, p := range batch {
			err := errs[i]
			if err == nil {
				err = t.readPlayer(ctx, p, tracked[p], lasts[i])
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil && first == nil {
				first = fmt.Errorf("read results of player %s: %w", p, err)
			}
		}
	}
	return first
}

// readPlayer hands Run the results of player's tracked tickets ids, given
// the player's last result (nil: none, so none of them has one).
func (t *Tracker) readPlayer(ctx context.Context, player string, ids []string, last *events.StoredMsg) error {
	if last == nil {
		return nil
	}
	res, err := events.DecodeResult(last.Data)
	if err != nil {
		t.log.Warn("bad result ignored", "subject", last.Subject, "err", err)
	}
	f := t.outcomes.Load()
	for _, id := range ids {
		if err == nil && res.TicketID == id {
			t.hand(ctx, player, res)
			continue
		}
		if err == nil && events.SupersededBy(res) == id {
			// An older ticket of the player told superseded by id, as
			// heard (HeardSuperseding); id's own outcome is read below.
			t.hand(ctx, player, res)
		}
		if f == nil {
			continue
		}
		octx, cancel := context.WithTimeout(ctx, catchUpCall)
		r, oerr := (*f)(octx, id, player, last.Sequence)
		cancel()
		if oerr != nil {
			return fmt.Errorf("ticket %s: %w", id, oerr)
		}
		if r != nil {
			t.hand(ctx, player, *r)
		}
	}
	return nil
}

// hand gives Run a result read back.
func (t *Tracker) hand(ctx context.Context, player string, res events.Result) {
	select {
	case t.caught <- caughtResult{player: player, res: res}:
	case <-ctx.Done():
	}
}
