// Package ratelimit gives each client its own token bucket, so one client
// that floods the frontend is slowed down without slowing anyone else.
package ratelimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter holds a bucket per client key (the client's address).
type Limiter struct {
	rate  rate.Limit
	burst int
	idle  time.Duration

	mu      sync.Mutex
	clients map[string]*client
	sweep   time.Time
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxIdle caps how long a client is kept (New).
const maxIdle = 24 * time.Hour

// New allows each client perSecond requests on average and burst at once.
// perSecond <= 0 turns limiting off.
//
// A client unseen for as long as its bucket takes to fill from empty
// (burst / perSecond, at least a second, at most maxIdle) has a full
// bucket, which is what a client never seen gets: it is forgotten then
// (at the next sweep, which comes within as long again), so the map
// holds only the clients of the last few seconds. Kept for minutes instead, it
// grew with every new player (a launch day's, or a flood of addresses):
// about 200 bytes each, 70 MiB after 10 minutes at 300 new players a
// second (BENCHMARKS.md, "Fourth round").
func New(perSecond float64, burst int) *Limiter {
	l := &Limiter{rate: rate.Limit(perSecond), burst: max(burst, 1), clients: map[string]*client{}}
	if perSecond > 0 {
		// In float first: a rate so low that the bucket takes over a day
		// to fill would overflow a Duration; such a client is kept a day.
		fill := math.Ceil(min(float64(l.burst)/perSecond, maxIdle.Seconds()) * float64(time.Second))
		l.idle = max(time.Duration(fill), time.Second)
	}
	return l
}

// Allow reports whether key may make a request now; if not, it also says
// when it may.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	if l.rate <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > l.idle {
		// Forget the clients whose buckets are full again (New).
		for k, c := range l.clients {
			if now.Sub(c.seen) > l.idle {
				delete(l.clients, k)
			}
		}
		l.sweep = now
	}
	c, ok := l.clients[key]
	if !ok {
		c = &client{lim: rate.NewLimiter(l.rate, l.burst)}
		l.clients[key] = c
	}
	c.seen = now
	r := c.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// size is how many clients the limiter holds.
func (l *Limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}
