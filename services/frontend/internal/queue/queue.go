// Package queue lets the frontend tell a waiting player how long their
// queue is. It follows the queue bucket, where the matcher that owns each
// shard writes the figures of each of its modes every couple of seconds
// (events.QueueStats): how many wait, and the expected wait estimated from
// recent matches.
package queue

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/natsconn"
)

// Watcher holds the latest figures of every shard and mode. Its map is
// written by Run alone and read by every request, so a RWMutex serves
// better than an owner goroutine here: reads never wait for each other.
// It holds one entry per shard and mode the matchers write, no more.
type Watcher struct {
	kv  jetstream.KeyValue
	log *slog.Logger
	// now is the clock: time.Now unless a test sets it (before Run).
	now func() time.Time

	mu    sync.RWMutex
	byKey map[string]figures
}

// figures are a shard's figures for one mode and when the bucket stored
// them (the server's time, not the writer's).
type figures struct {
	stats  events.QueueStats
	stored time.Time
}

// New binds to the queue bucket.
func New(ctx context.Context, js jetstream.JetStream, subj events.Subjects, log *slog.Logger) (*Watcher, error) {
	kv, err := js.KeyValue(ctx, subj.QueueBucket())
	if err != nil {
		return nil, fmt.Errorf("queue bucket: %w", err)
	}
	return &Watcher{kv: kv, log: log, now: time.Now, byKey: map[string]figures{}}, nil
}

// Run follows the bucket until ctx ends. A watch that cannot start or that
// ends (NATS away) is started again a second later: meanwhile the figures
// held age out (ExpectedWait), so none older than the bucket's TTL is
// shown.
func (w *Watcher) Run(ctx context.Context) error {
	return natsconn.Follow(ctx, w.kv, "queue", w.log, w.apply)
}

// apply takes one entry of the bucket. Figures that do not decode, or
// that sit under another shard's or mode's key, are dropped (and the key's
// old figures with them): they are no one's to show.
func (w *Watcher) apply(e jetstream.KeyValueEntry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.byKey, e.Key())
	if e.Operation() != jetstream.KeyValuePut {
		return
	}
	st, err := events.DecodeQueueStats(e.Value())
	if err != nil {
		w.log.Warn("bad queue figures ignored", "key", e.Key(), "err", err)
		return
	}
	if key, _ := events.QueueKey(st.Region, st.Tier, st.Mode); key != e.Key() {
		w.log.Warn("queue figures under another key ignored", "key", e.Key(), "figures_of", key)
		return
	}
	w.byKey[e.Key()] = figures{stats: st, stored: e.Created()}
}

// ExpectedWait is the expected wait of a ticket of shard s and mode, from
// its creation to its match, as the shard's owner last estimated it; ok
// is false when it is unknown: no figures, figures without an estimate,
// or figures older than the bucket's TTL (the bucket drops them then, but
// tells no watch that it did).
func (w *Watcher) ExpectedWait(s events.Shard, mode string) (d time.Duration, ok bool) {
	key, err := events.QueueKey(s.Region, s.Tier, mode)
	if err != nil {
		return 0, false
	}
	w.mu.RLock()
	f, found := w.byKey[key]
	w.mu.RUnlock()
	if !found || w.now().Sub(f.stored) > events.QueueStatsTTL {
		return 0, false
	}
	return f.stats.ExpectedWait()
}
