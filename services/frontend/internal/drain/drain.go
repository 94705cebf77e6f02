// Package drain lets the frontend refuse new tickets for a shard an
// operator drained, telling the client why. It follows the drains bucket
// (events.Drains), where operators drain and resume shards. Only
// admission stops: a drained shard's waiting tickets are still matched
// (the matchers do not read the bucket), and reading, following and
// cancelling a ticket are never refused.
package drain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/natsconn"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// ErrDrained is matched (errors.Is) by a *DrainedError.
var ErrDrained = errors.New("shard is drained")

// RetryAfter is what a refused client is told to wait before it asks
// again. A drain is an operator's act that lasts minutes (an upgrade, an
// incident), so asking every few seconds would only add load.
const RetryAfter = 30 * time.Second

// DrainedError says a shard is drained, and the operator's reason.
type DrainedError struct {
	Shard      events.Shard
	Reason     string
	Since      time.Time
	RetryAfter time.Duration
}

func (e *DrainedError) Error() string {
	// The contract's text: a WebSocket client reads the shard and the
	// reason back from it (ticketapi.ParseDrainedReason).
	return ticketapi.DrainedReason(e.Shard.String(), e.Reason)
}

// Is makes errors.Is(err, ErrDrained) true.
func (e *DrainedError) Is(target error) bool { return target == ErrDrained }

// Watcher holds the drain of every drained shard. Its map is written by
// New (before anyone reads it) and then by Run alone, and read by every ticket creation, so a RWMutex serves better
// than an owner goroutine here: reads never wait for each other. It holds
// one entry per drained shard, no more.
type Watcher struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu      sync.RWMutex
	byShard map[events.Shard]events.Drain
}

// LoadTimeout bounds New's reading of the drains in force.
const LoadTimeout = 5 * time.Second

// New binds to the drains bucket and reads the drains in force before it
// returns, so that a frontend refuses drained shards from its first
// request (Run's watch then replays them, which changes nothing). If
// NATS does not answer within LoadTimeout (or ctx ends first), New fails
// and the frontend, not ready yet, tries again (service.Retry): starting
// without the drains would admit tickets into drained shards until the
// watch caught up, and a frontend that cannot read a bucket within
// seconds could not create a ticket either. A bad entry is logged and
// ignored, as Run does.
func New(ctx context.Context, js jetstream.JetStream, subj events.Subjects, log *slog.Logger) (*Watcher, error) {
	ctx, cancel := context.WithTimeout(ctx, LoadTimeout)
	defer cancel()
	kv, err := js.KeyValue(ctx, subj.DrainsBucket())
	if err != nil {
		return nil, fmt.Errorf("drains bucket: %w", err)
	}
	w := &Watcher{kv: kv, log: log, byShard: map[events.Shard]events.Drain{}}
	if err := w.load(ctx); err != nil {
		return nil, fmt.Errorf("read the drains in force: %w", err)
	}
	return w, nil
}

// load applies every drain in the bucket now. A key deleted between its
// listing and its read is a shard resumed meanwhile: nothing to apply.
func (w *Watcher) load(ctx context.Context) error {
	keys, err := w.kv.ListKeys(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = keys.Stop() }()
	for key := range keys.Keys() {
		e, err := w.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("drain of %s: %w", key, err)
		default:
			w.apply(e)
		}
	}
	return ctx.Err() // a listing cut short by the timeout ends without an error of its own
}

// Run follows the bucket until ctx ends. A watch that cannot start or that
// ends (NATS away) is started again a second later, and the frontend keeps
// the drains it knew meanwhile. A shard resumed during the gap is heard of
// when the watch starts again: its key's last entry is the delete
// (events.Drains.Resume), and a watch hands deletes over too.
func (w *Watcher) Run(ctx context.Context) error {
	return natsconn.Follow(ctx, w.kv, "drains", w.log, w.apply)
}

// apply takes one entry of the bucket. A key that names no shard, or a
// value that does not decode, is logged and ignored: the shard keeps
// what it had (a bad value drains nothing, nor resumes a drained shard),
// since only a valid drain or a delete is an operator's order.
func (w *Watcher) apply(e jetstream.KeyValueEntry) {
	shard, err := events.ParseShard(e.Key())
	if err != nil {
		w.log.Warn("drain under a bad key ignored", "key", e.Key(), "err", err)
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		w.mu.Lock()
		_, was := w.byShard[shard]
		delete(w.byShard, shard)
		w.mu.Unlock()
		if was {
			w.log.Info("shard resumed", "shard", shard.String())
		}
		return
	}
	d, err := events.DecodeDrain(e.Value())
	if err != nil {
		w.log.Warn("bad drain ignored", "shard", shard.String(), "err", err)
		return
	}
	w.mu.Lock()
	w.byShard[shard] = d
	w.mu.Unlock()
	w.log.Info("shard drained", "shard", shard.String(), "reason", d.Reason, "by", d.By, "at", d.At)
}

// CheckShard returns nil if shard s admits tickets, and a *DrainedError
// with the operator's reason if it is drained.
func (w *Watcher) CheckShard(s events.Shard) error {
	w.mu.RLock()
	d, ok := w.byShard[s]
	w.mu.RUnlock()
	if !ok {
		return nil
	}
	return &DrainedError{Shard: s, Reason: d.Reason, Since: d.At, RetryAfter: RetryAfter}
}
