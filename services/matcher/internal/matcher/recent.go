package matcher

import "time"

// recentFor is how long a runner remembers what a notice or a commit told
// it (recent): long enough for what it is about to come after it.
const recentFor = time.Minute

// recent remembers keys, each with a value, for recentFor: a cancel
// notice for a ticket that arrives after it (runner.ended), a matched
// notice for a copy that arrives after it (copies.matched), a match
// undone for good for the same tickets formed again (runner.undone,
// behind a lock: spent). Only the runner's goroutine uses it; the sweep
// forgets what is older (prune).
type recent[V any] struct {
	// max bounds the keys remembered (0: unbounded); past it, a new key
	// is not remembered (what it was for falls back on the claims).
	max   int
	items map[string]recentItem[V]
}

type recentItem[V any] struct {
	v  V
	at time.Time
}

func newRecent[V any](max int) *recent[V] {
	return &recent[V]{max: max, items: map[string]recentItem[V]{}}
}

// put remembers key with v from now (again, if it was already).
func (c *recent[V]) put(key string, v V, now time.Time) {
	if _, ok := c.items[key]; !ok && c.max > 0 && len(c.items) >= c.max {
		return
	}
	c.items[key] = recentItem[V]{v: v, at: now}
}

// get is key's value, if it is remembered.
func (c *recent[V]) get(key string) (V, bool) {
	it, ok := c.items[key]
	return it.v, ok
}

// has reports whether key is remembered.
func (c *recent[V]) has(key string) bool {
	_, ok := c.items[key]
	return ok
}

// prune forgets what was put more than recentFor before now.
func (c *recent[V]) prune(now time.Time) {
	for k, it := range c.items {
		if now.Sub(it.at) > recentFor {
			delete(c.items, k)
		}
	}
}
