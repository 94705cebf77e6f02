package tickets

import (
	"sync"
	"time"
)

// lateWrites are the tickets this frontend created within lateWritesFor
// whose writes went through on a later try (finish), or after a matcher
// put them in a match: under a cut, which is when a replica of the
// tickets bucket is behind the two that acked the record's put. A read
// that a replica answers "no such record" for one of them is asked of
// the bucket's leader (Record). Only these: a client following its
// ticket right after the 202 heard 404 (chaos S49e: 3), where asking the
// leader for every id not found would double what a caller guessing ids
// costs, on the server that answers ownership reads (review). Two
// generations, each lateWritesFor long, so that an id is kept between
// one and two of them.
//
// This frontend's creations only: a client whose next request reaches
// another frontend (a load balancer's choice) may still hear 404 while
// the replica is behind.
type lateWrites struct {
	mu        sync.Mutex
	cur, prev map[string]struct{}
	since     time.Time
}

// lateWritesFor is how long a ticket is kept at least: a replica behind
// a cut catches up within seconds of the heal.
const lateWritesFor = 30 * time.Second

// add keeps id.
func (l *lateWrites) add(id string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rotate(now)
	if l.cur == nil {
		l.cur = map[string]struct{}{}
	}
	l.cur[id] = struct{}{}
}

// has reports whether id is kept.
func (l *lateWrites) has(id string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rotate(now)
	_, inCur := l.cur[id]
	_, inPrev := l.prev[id]
	return inCur || inPrev
}

// rotate starts a new generation once the current one is lateWritesFor
// old, and forgets both after twice that.
func (l *lateWrites) rotate(now time.Time) {
	switch age := now.Sub(l.since); {
	case age >= 2*lateWritesFor:
		l.cur, l.prev, l.since = nil, nil, now
	case age >= lateWritesFor:
		l.cur, l.prev, l.since = nil, l.cur, now
	}
}
