package api

import (
	"math"
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

// waitChange is how much a queued ticket's expected wait must move, as a
// fraction of the figure its client has, for the client to be sent it
// again: the estimate is a median of the last minute's matches and
// wobbles by a few percent between two writes of the queue bucket, which
// are not worth a message to every waiting client.
const waitChange = 0.25

// refresher keeps a waiting client's expected wait current: a queued
// event (SSE, /ws/events) carries the figure of its moment, and a player
// waiting minutes would otherwise see the first estimate until the end.
// It is checked every Config.WaitRefresh, so a client gets at most one
// refresh per period, and only when the figure moved by more than
// waitChange, or became known. One per connection, used by its goroutine.
type refresher struct {
	a *API
	// view is the ticket's latest view, without a wait; sent is the
	// expected wait the client has (0: none).
	view tickets.View
	sent int64
}

// saw records that the client has v (with its wait, as sent).
func (r *refresher) saw(v tickets.View) {
	r.sent = v.ExpectedWaitMS
	v.ExpectedWaitMS = 0
	r.view = v
}

// again is what the client has: the ticket's latest view with the
// expected wait it was sent (a figure that moved is due's to send).
func (r *refresher) again() tickets.View {
	v := r.view
	v.ExpectedWaitMS = r.sent
	return v
}

// due is the ticket's view with a new expected wait when the client is
// due it: the ticket is still queued and its figure moved enough.
func (r *refresher) due() (tickets.View, bool) {
	if r.view.Status != events.StatusQueued {
		return tickets.View{}, false
	}
	v := r.a.withWait(r.view)
	if !waitMoved(r.sent, v.ExpectedWaitMS) {
		return tickets.View{}, false
	}
	r.saw(v)
	return v, true
}

// waitMoved reports whether a client that has the expected wait had
// (0: none) should be sent now: a figure that became known, or that moved
// by more than waitChange of had. A figure that became unknown is not
// sent: the client's is the best there is.
func waitMoved(had, now int64) bool {
	switch {
	case now == 0:
		return false
	case had == 0:
		return true
	}
	return math.Abs(float64(now-had)) > waitChange*float64(had)
}

// refreshTicks is the ticker channel of the refreshes, nil (never ready)
// when they are off; stop stops the ticker.
func (a *API) refreshTicks() (ticks <-chan time.Time, stop func()) {
	if a.cfg.WaitRefresh <= 0 || a.cfg.Queue == nil {
		return nil, func() {}
	}
	t := time.NewTicker(a.cfg.WaitRefresh)
	return t.C, t.Stop
}
