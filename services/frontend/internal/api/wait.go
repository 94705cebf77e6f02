package api

import (
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

// Queue tells the expected wait of a shard's mode, as its matcher last
// estimated it from recent matches (queue.Watcher); ok is false when it is
// unknown.
type Queue interface {
	ExpectedWait(s events.Shard, mode string) (d time.Duration, ok bool)
}

// withWait is v with the expected wait of its shard and mode when it is
// queued and the wait is known: every view a client gets (GET, the 202 of
// a new ticket, SSE and WebSocket events) goes through it, so all carry
// the same figure. A ticket past queued waits no more, and carries none.
func (a *API) withWait(v tickets.View) tickets.View {
	if a.cfg.Queue == nil || v.Status != events.StatusQueued {
		return v
	}
	if d, ok := a.cfg.Queue.ExpectedWait(events.Shard{Region: v.Region, Tier: v.Tier}, v.Mode); ok {
		v.ExpectedWaitMS = max(d.Milliseconds(), 1) // 0 means unknown
	}
	return v
}
