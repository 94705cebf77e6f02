package matcher

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The feed's resets of its consumers (feed says when and why).

// flag marks the consumers of mask suspect and wakes watch.
func (f *feed) flag(mask uint32) {
	f.suspect.Or(mask)
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// watch resets each suspect consumer (resetSuspects) until the runner
// stops: at once the first time, then no more often than resetGap,
// retrying every retryGap while it fails. A reconnect makes every
// consumer suspect (what the old connection held is lost). A reset that
// succeeded was answered by the consumer's leader and came after every
// ack sent before it on this connection, so what was lost before it is
// delivered again.
func (f *feed) watch(ctx context.Context) {
	defer close(f.watched)
	status := f.nc.StatusChanged(nats.RECONNECTING, nats.CONNECTED)
	defer f.nc.RemoveStatusListener(status)
	away := false
	var last time.Time
	for {
		select {
		case <-f.stopC:
			return
		case s := <-status:
			if s == nats.RECONNECTING {
				away = true
				continue
			}
			if !away {
				continue
			}
			away = false
			f.log.Warn("reconnected; resetting the shard's consumers")
			f.suspect.Or(1<<len(f.specs) - 1)
		case <-f.wake:
		}
		for f.suspect.Load() != 0 {
			if !f.sleep(time.Until(last.Add(resetGap))) {
				return
			}
			mask := f.suspect.Swap(0)
			if f.resetSuspects(ctx, mask) {
				last = time.Now()
			}
			if f.suspect.Load() != 0 && !f.sleep(retryGap) {
				return
			}
		}
	}
}

// resetSuspects resets the consumers of mask, marking again those that
// failed, and reports whether one was reset.
func (f *feed) resetSuspects(ctx context.Context, mask uint32) bool {
	done := false
	for i := range f.specs {
		if mask&(1<<i) == 0 {
			continue
		}
		f.tries.Add(1)
		if err := f.resetConsumer(ctx, i); err != nil {
			f.log.Warn("reset shard consumer; retrying", "consumer", f.specs[i].name, "err", err)
			f.suspect.Or(1 << i)
			continue
		}
		done = true
		f.log.Info("shard consumer reset", "consumer", f.specs[i].name)
	}
	return done
}

// sleep waits d, and reports false if the runner stopped meanwhile.
func (f *feed) sleep(d time.Duration) bool {
	select {
	case <-f.stopC:
		return false
	case <-time.After(max(d, 0)):
		return !f.stopped()
	}
}

// resetConsumer resets consumer i and consumes it anew (consume). The
// reset goes only once the consumer's leader answered a question (its
// info, quiet) on this connection: a connection that hangs holds
// questions, not resets, to hand the server at the heal, when the shard
// may be another owner's (its stop ends ctx, but not what the connection
// holds).
func (f *feed) resetConsumer(ctx context.Context, i int) error {
	cc, err := f.consume(ctx, i)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.ccs[i] = cc
	f.mu.Unlock()
	return nil
}

// quiet stops consumer i's consume, if any, and waits until no pull
// request waits on the consumer, as its leader answers (a consumer's info
// drops the requests that expired or that nobody listens to any more),
// for at most quietWait. Its own requests need only the stop: the leader
// checks that a request has a listener before each delivery, and the
// unsubscribe reaches it before the reset, on the same connection. The
// wait is for another client's (a previous owner's whose connection
// hangs): those it cannot end, and waiting longer would strand what the
// consumer holds for the pool's AckWait, so it resets anyway, logged as
// an error (the loss above may follow). It fails if the leader does not
// answer: a connection that hangs holds no reset (resetConsumer). The
// consumer it asked is the one consume then consumes.
func (f *feed) quiet(ctx context.Context, i int) (jetstream.Consumer, error) {
	f.mu.Lock()
	cc := f.ccs[i]
	f.mu.Unlock()
	if cc != nil {
		cc.Stop() // what it buffered is given again by the reset
		select {
		case <-cc.Closed(): // unsubscribed: its requests have no listener
		case <-time.After(f.timeout):
		case <-f.stopC:
			return nil, errStopped
		}
	}
	c := f.specs[i]
	for end := time.Now().Add(quietWait); ; {
		qctx, cancel := context.WithTimeout(ctx, f.timeout)
		cons, err := f.js.Consumer(qctx, c.stream, c.name)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("ask %s: %w", c.name, err)
		}
		waiting := cons.CachedInfo().NumWaiting
		if waiting == 0 {
			return cons, nil
		}
		if time.Now().After(end) {
			f.log.Error("pull requests of another client wait on the shard consumer; resetting it anyway, which may drop unacked tickets",
				"consumer", c.name, "waiting", waiting)
			return cons, nil
		}
		if !f.sleep(quietPoll) {
			return nil, errStopped
		}
	}
}
