package allocator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// puller takes matches from the allocators' pull consumer for the router,
// at most Config.Concurrency at a time: it pulls only as many as it has
// room for, so none waits here unworked while another allocator could
// take it, and a match delivered to an allocator that dies or is cut off
// comes back after the consumer's AckWait (5 s), where the push consumer
// it replaced held up to its whole group's share for 30 s. While the
// router works on a match, the puller tells the server so every
// events.AllocatorProgressEvery, up to events.AllocatorReservationStale,
// and settles it as the router does: an ack, or a nak to come back after
// NakDelay.
//
// Concurrency: run's goroutine pulls; each match pulled has a goroutine
// of its own (work) until it is settled, holding one of the slots.
type puller struct {
	cons     jetstream.Consumer
	nc       *nats.Conn // the consumer's connection, whose last error says a pull was refused
	out      chan *message.Message
	slots    chan struct{} // one per match being worked on; its size is Concurrency
	nakDelay time.Duration
	grace    time.Duration // how long a match in the router may finish once ctx ends
	log      *slog.Logger
	refused  *atomic.Bool   // the last pulls were refused (pullRefused) since one was not (Allocator.Refused)
	sending  sync.WaitGroup // matches not yet handed to the router (or nakked)
	working  sync.WaitGroup // matches not yet settled
}

func newPuller(cons jetstream.Consumer, nc *nats.Conn, cfg Config, log *slog.Logger) *puller {
	return &puller{cons: cons, nc: nc, out: make(chan *message.Message), slots: make(chan struct{}, cfg.Concurrency),
		nakDelay: cfg.NakDelay, grace: cfg.CloseTimeout, log: log, refused: new(atomic.Bool)}
}

// pull asks for as many matches as there is room for (at least one: it
// waits for a slot), and returns the batch, how many slots it holds for
// it, and what ends it early. Its context, not only its expiry, bounds
// it: ending it unsubscribes the pull's inbox, and the server drops a
// pull no one hears (without leaf nodes or gateways, which deploy/nats
// has none of: through them the server takes a pull under 2 s old as
// heard), so a stopping allocator's pull takes almost no more (one the
// server meets before the unsubscribe comes back after AckWait).
// Without a connection it asks nothing: nats.go would keep the request
// for the reconnect, when its inbox is long gone.
func (p *puller) pull(ctx context.Context) (jetstream.MessageBatch, int, context.CancelFunc, error) {
	if !p.nc.IsConnected() {
		return nil, 0, nil, fmt.Errorf("pull: %w", nats.ErrDisconnected)
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, nil, ctx.Err()
	}
	n := 1
	for n < cap(p.slots) && p.take() {
		n++
	}
	// The deadline sets the pull's expiry (nats.go asks the server for
	// 90% of it), within the consumer's MaxRequestExpires.
	pctx, cancel := context.WithTimeout(ctx, events.AllocatorPullExpiry)
	batch, err := p.cons.Fetch(n, jetstream.FetchContext(pctx))
	if err != nil {
		cancel()
		p.release(n)
		return nil, 0, nil, err
	}
	return batch, n, cancel, nil
}

// take takes a free slot, if there is one.
func (p *puller) take() bool {
	select {
	case p.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (p *puller) release(n int) {
	for range n {
		<-p.slots
	}
}

// run hands out the matches of first (the pull route made to see the
// server take it; held slots are its, and end ends it) and pulls on
// until ctx ends. Then it closes the router's channel once nothing more
// is sent on it (the router stops once it is closed), and waits for every
// match pulled to be settled or given up.
func (p *puller) run(ctx context.Context, first jetstream.MessageBatch, held int, end context.CancelFunc) {
	defer func() {
		p.sending.Wait()
		close(p.out)
		p.working.Wait()
	}()
	batch := first
	var failing time.Time // when the pulls began to fail; zero while they do not
	pause := pullPause
	for {
		var err error
		before := p.nc.LastError()
		if batch == nil {
			batch, held, end, err = p.pull(ctx)
		}
		got := 0
		if batch != nil {
			for msg := range batch.Messages() {
				got++
				p.sending.Add(1)
				p.working.Add(1)
				go p.work(ctx, msg)
			}
			end()
			p.release(held - got)
			err = batch.Error()
			batch = nil
		}
		if ctx.Err() != nil {
			return
		}
		// The server answered the pull: matches, or its expiry's 408.
		// A refused pull gets neither, whatever else the connection
		// hears meanwhile (another subject refused).
		answered := got > 0 || err == nil
		if errors.Is(err, context.DeadlineExceeded) && p.nc.IsConnected() {
			err = nil // the pull's own deadline: it expired, as pulls do when idle
		}
		// A pull the server refused for want of a permission gets no
		// answer: it expires, with no error, and the server says why
		// apart, on the connection.
		if last := p.nc.LastError(); err == nil && last != before && pullRefused(last) {
			err = last
		}
		switch {
		case answered:
			p.refused.Store(false)
		case pullRefused(err):
			p.refused.Store(true)
		}
		failing = p.note(err, failing)
		if err == nil {
			pause = pullPause
			continue
		}
		// A pull the server answers at once (JetStream without a leader:
		// no responders; the consumer gone) is not tried again in a loop.
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return
		}
		pause = min(2*pause, events.AllocatorPullExpiry)
	}
}

// pullRefused says err is the server refusing a pull for want of a
// permission (a permission taken away by a configuration reload: at
// start-up, route makes such a refusal end Run).
func pullRefused(err error) bool {
	return errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), "$JS.API.CONSUMER.MSG.NEXT.")
}

// pullPause is the first wait after a failed pull; it doubles while they
// fail, up to a pull's expiry.
const pullPause = 100 * time.Millisecond

// note logs a failed pull, once when they begin to fail and once every
// 10 s while they go on (NATS away for a while fails one every pull),
// and says when they began to fail; a pull that did not fail ends that.
func (p *puller) note(err error, failing time.Time) time.Time {
	if err == nil {
		if !failing.IsZero() {
			p.log.Info("pulling allocation requests again", "failed_for", time.Since(failing).Round(time.Millisecond))
		}
		return time.Time{}
	}
	now := time.Now()
	if failing.IsZero() {
		p.log.Warn("pull allocation requests", "err", err)
		return now
	}
	if now.Sub(failing) >= 10*time.Second {
		p.log.Warn("pull allocation requests: still failing", "err", err, "since", now.Sub(failing).Round(time.Second))
		return now
	}
	return failing
}

// work hands one match to the router and settles it as the router does,
// telling the server it is in progress meanwhile; it frees its slot once
// done. A match the router never took (ctx ended) is nakked, to come
// back at once to another allocator (this one's pull is gone: pull); one
// the router did not settle within the grace once ctx ended is left to
// come back after AckWait.
func (p *puller) work(ctx context.Context, in jetstream.Msg) {
	defer p.working.Done()
	defer p.release(1)
	msg := unmarshal(in)
	msg.SetContext(ctx)
	sent := false
	if ctx.Err() == nil { // once ctx ended, the select would pick either
		select {
		case p.out <- msg:
			sent = true
		case <-ctx.Done():
		}
	}
	p.sending.Done()
	if !sent {
		_ = in.Nak()
		return
	}
	progress := time.NewTicker(events.AllocatorProgressEvery)
	defer progress.Stop()
	until := time.Now().Add(events.AllocatorReservationStale)
	done := ctx.Done()
	var grace <-chan time.Time
	for {
		select {
		case <-msg.Acked():
			// Without waiting for the server's answer: by then the
			// match's record and results are stored, so an ack lost on
			// the way only brings the match back, and its record makes
			// that delivery repeat the same results (the same message
			// ids: stored once).
			_ = in.Ack()
			return
		case <-msg.Nacked():
			_ = in.NakWithDelay(p.nakDelay)
			return
		case <-progress.C:
			// Past the reservation's life another request may take the
			// match over, so the server may as well deliver it again.
			if time.Now().Before(until) {
				_ = in.InProgress()
			}
		case <-done:
			done, grace = nil, time.After(p.grace)
		case <-grace:
			return
		}
	}
}
