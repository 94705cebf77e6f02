package shard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Who is alive: the workers listed in the workers bucket, judged by their
// beats. Each call has its own deadline (Manager.call), and none is waited
// for past it: a step held on a cut route starts no renewal.

// live returns the workers that beat within WorkerTTL, this one included.
// The beats are read side by side; a beat that cannot be read makes the
// view unknown (an error), not the worker dead.
func (m *Manager) live(ctx context.Context, now time.Time) ([]string, error) {
	others, err := m.list(ctx)
	if err != nil {
		return nil, err
	}
	type beat struct {
		worker string
		alive  bool
		err    error
	}
	beats := make([]beat, len(others))
	var wg sync.WaitGroup
	for i, k := range others {
		wg.Go(func() {
			cctx, cancel := m.call(ctx)
			defer cancel()
			e, err := m.workers.Get(cctx, k)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
				beats[i] = beat{worker: k} // gone since the listing
			case err != nil:
				beats[i] = beat{worker: k, err: fmt.Errorf("beat of %s: %w", k, err)}
			default:
				ms, err := strconv.ParseInt(string(e.Value()), 10, 64)
				beats[i] = beat{worker: k, alive: err == nil && now.Sub(time.UnixMilli(ms)) < events.WorkerTTL}
			}
		})
	}
	wg.Wait()
	out := []string{m.id}
	var errs []error
	for _, b := range beats {
		errs = append(errs, b.err)
		if b.alive {
			out = append(out, b.worker)
		}
	}
	return out, errors.Join(errs...)
}

// list returns the other workers in the workers bucket, or, when they
// cannot be listed, those of the last listing (an error if there was
// none: this worker may not be alone).
func (m *Manager) list(ctx context.Context) ([]string, error) {
	cctx, cancel := m.call(ctx)
	defer cancel()
	keys, err := m.workers.ListKeys(cctx)
	var listed map[string]bool
	if err == nil {
		listed, err = m.collect(cctx, keys)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err == nil:
		m.known = listed
	case m.known == nil:
		return nil, err
	default:
		m.log.Debug("list workers; judging those listed before", "err", err)
	}
	out := make([]string, 0, len(m.known))
	for k := range m.known {
		out = append(out, k)
	}
	return out, nil
}

// collect reads the other workers' keys of a listing until it ends or
// ctx does. It does not wait for the channel to close after ctx ends:
// nats.go closes it only once the ordered consumer behind the listing is
// deleted, a request without ctx's deadline (the client's default, 5 s),
// held on a cut route; a step held there would start no renewal, and the
// shards would not be given up before their leases lapse.
func (m *Manager) collect(ctx context.Context, keys jetstream.KeyLister) (map[string]bool, error) {
	listed := map[string]bool{}
	for {
		select {
		case k, ok := <-keys.Keys():
			if !ok {
				// The channel also closes when ctx ends.
				return listed, ctx.Err()
			}
			if k != m.id {
				listed[k] = true
			}
		case <-ctx.Done():
			// Drained until nats.go closes it, so that its sender never
			// blocks.
			go func() {
				for range keys.Keys() {
				}
			}()
			return nil, ctx.Err()
		}
	}
}
