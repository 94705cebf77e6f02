// Package capacity lets the frontend refuse tickets for a region whose game
// servers are full, instead of queueing players into certain failure. It
// follows the capacity bucket, where allocators report the free rooms of
// each region.
package capacity

import (
	"context"
	"encoding/json"
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

// ErrFull is matched (errors.Is) by a *FullError.
var ErrFull = errors.New("region is " + ticketapi.RegionFullText)

// FullError says a region is full and where there is room.
type FullError struct {
	Region string
	// Suggest is a region with free rooms, or "".
	Suggest    string
	RetryAfter time.Duration
}

func (e *FullError) Error() string {
	return ticketapi.RegionFullError(e.Region, e.Suggest) // the contract's text
}

// Is makes errors.Is(err, ErrFull) true.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// Watcher holds the latest capacity of every region. Its map is written by
// Run alone and read by every request, so a RWMutex serves better than an
// owner goroutine here: reads never wait for each other.
type Watcher struct {
	kv jetstream.KeyValue
	// minFree is the fewest free rooms a region must have to take tickets.
	minFree int
	log     *slog.Logger

	mu       sync.RWMutex
	byRegion map[string]events.Capacity
}

// New binds to the capacity bucket. A region with fewer than minFree free
// rooms refuses tickets; minFree <= 0 turns the check off.
func New(ctx context.Context, js jetstream.JetStream, subj events.Subjects, minFree int, log *slog.Logger) (*Watcher, error) {
	kv, err := js.KeyValue(ctx, subj.CapacityBucket())
	if err != nil {
		return nil, fmt.Errorf("capacity bucket: %w", err)
	}
	return &Watcher{kv: kv, minFree: minFree, log: log, byRegion: map[string]events.Capacity{}}, nil
}

// Run follows the bucket until ctx ends. A watch that cannot start or that
// ends (NATS away) is started again a second later: the frontend keeps
// serving on the last reports meanwhile.
func (w *Watcher) Run(ctx context.Context) error {
	return natsconn.Follow(ctx, w.kv, "capacity", w.log, w.apply)
}

func (w *Watcher) apply(e jetstream.KeyValueEntry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(w.byRegion, e.Key())
		return
	}
	var c events.Capacity
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		w.log.Warn("bad capacity report ignored", "key", e.Key(), "err", err)
		return
	}
	w.byRegion[e.Key()] = c
}

// Check returns nil if region may take a ticket now, and a *FullError if
// its last report shows fewer free rooms than the minimum. A region nobody
// reported on passes: no report is not proof of no free rooms.
func (w *Watcher) Check(region string) error {
	if w.minFree <= 0 {
		return nil
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	c, ok := w.byRegion[region]
	if !ok || c.FreeRooms >= w.minFree {
		return nil
	}
	full := &FullError{Region: region, RetryAfter: 5 * time.Second}
	best := w.minFree - 1
	for r, other := range w.byRegion {
		if r != region && other.FreeRooms > best {
			best, full.Suggest = other.FreeRooms, r
		}
	}
	return full
}
