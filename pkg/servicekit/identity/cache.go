package identity

import (
	"crypto/sha256"
	"math"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The token cache remembers tokens that passed a check in full, so that a
// ticket's second check of the same token (its POST, then its event
// stream) costs a hash and a map lookup instead of a signature check.
//
// What it promises, and why each holds:
//   - A hit is the very same token: the key is the SHA-256 of the whole
//     token, so a token differing in any byte is a different key and is
//     checked in full. Only successes are remembered.
//   - Time is judged on every hit: an entry keeps the token's window (nbf
//     and iat less the leeway, exp plus the leeway, both as the parser
//     judges them) and is refused outside it, and it lives at most the
//     max age. Outside its window an entry is dropped and the token is
//     checked in full, which refuses it with the parser's own error.
//   - Keys that change retire entries: each carries the key generation it
//     was verified under (read before the check), and every change to the
//     JWKS store adds one to it. A removed key's tokens are thus never
//     taken from the cache; any JWKS read (every Refresh, or an unknown
//     kid, at most every UnknownKIDEvery) costs each token one more check
//     in full. Static keys never change.
//   - Memory is bounded: each shard holds at most its share of the size,
//     evicting in insertion order (a ring of keys), so a client presenting
//     many distinct valid tokens only pushes older entries out; and its
//     map is made anew at every turn of its ring (compact), so the room
//     of evicted entries does not pile up in it.
//
// Concurrency: 16 shards (more for a cache of over 262,144 entries: see
// maxShardEntries), picked by the key's first byte, each a map and
// a ring under one mutex held for a lookup or an insert (and a turn's
// compaction), never during a check in full. Two goroutines missing on
// the same token both check it and the second insert replaces the first.
const cacheShards = 16

// maxShardEntries is the most entries a shard holds: a larger cache has
// more shards (up to 256, one per value of the key's first byte), so
// that a shard's compaction, a copy of its map under its lock, stays
// short (16,384 entries: a few milliseconds), whatever size is
// configured.
const maxShardEntries = 16384

// window is when a verified token stays acceptable from the cache, in
// Unix nanoseconds: accepted while from <= now < until.
type window struct{ from, until int64 }

// entry is a remembered verification.
type entry struct {
	caller Caller
	window
	gen  uint64 // the key generation it was verified under
	slot int32  // its place in its shard's ring
}

type cacheKey = [sha256.Size]byte

type tokenCache struct {
	shards []cacheShard
}

type cacheShard struct {
	mu      sync.Mutex
	entries map[cacheKey]entry
	ring    []cacheKey // ring[e.slot] is e's key; next is the one to evict
	next    int
	_       [64]byte // keeps the shards' locks off one cache line
}

// newTokenCache holds at most size entries (size > 0).
func newTokenCache(size int) *tokenCache {
	n := shardsFor(size)
	c := &tokenCache{shards: make([]cacheShard, n)}
	for i := range c.shards {
		c.shards[i].entries = map[cacheKey]entry{}
		c.shards[i].ring = make([]cacheKey, size/n)
	}
	return c
}

// shardsFor is the shards of a cache of size entries: cacheShards, fewer
// for a cache smaller than that, more for one whose shards would hold
// more than maxShardEntries each.
func shardsFor(size int) int {
	n := cacheShards
	for n > 1 && n > size {
		n /= 2
	}
	for n < 256 && size/n > maxShardEntries {
		n *= 2
	}
	return n
}

func (c *tokenCache) shard(k *cacheKey) *cacheShard {
	return &c.shards[int(k[0])%len(c.shards)]
}

// get returns the caller of a token verified under generation gen whose
// window holds now; an entry that fails either is dropped.
func (c *tokenCache) get(k *cacheKey, now int64, gen uint64) (Caller, bool) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[*k]
	if !ok {
		return Caller{}, false
	}
	if e.gen != gen || now < e.from || now >= e.until {
		delete(s.entries, *k)
		return Caller{}, false
	}
	return e.caller, true
}

// put remembers a verification, evicting its shard's oldest entry when
// the shard is full.
func (c *tokenCache) put(k *cacheKey, e entry) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.entries[*k]; ok {
		e.slot = old.slot
		s.entries[*k] = e
		return
	}
	slot := s.next
	s.next = (s.next + 1) % len(s.ring)
	// The slot's key may have been dropped, or dropped and put again in
	// another slot: then it is not this slot's to evict.
	if old, ok := s.entries[s.ring[slot]]; ok && int(old.slot) == slot {
		delete(s.entries, s.ring[slot])
	}
	s.ring[slot] = *k
	e.slot = int32(slot)
	s.entries[*k] = e
	if s.next == 0 { // a turn ended: compact what is held now
		s.compact()
	}
}

// compact moves a shard's entries to a map of their size, once per turn
// of its ring: one entry copied per put on average, though all at once,
// under the shard's lock (at most maxShardEntries). A Go map keeps
// the room of every entry deleted from it: one that evicts an entry per
// insert, as a full shard does, grows to several times what it holds
// (BenchmarkTokenCacheChurn).
func (s *cacheShard) compact() {
	m := make(map[cacheKey]entry, len(s.ring))
	for k, e := range s.entries {
		m[k] = e
	}
	s.entries = m
}

// len is how many entries are held.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}

// windowOf is the window in which the parser, with this verifier's
// leeway, accepts verified claims: exp is required, so present.
func (v *Verifier) windowOf(claims jwt.MapClaims) window {
	w := window{from: math.MinInt64}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		w.until = unixNano(exp.Add(v.cfg.Leeway))
	}
	if nbf, err := claims.GetNotBefore(); err == nil && nbf != nil {
		w.from = max(w.from, unixNano(nbf.Add(-v.cfg.Leeway)))
	}
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		w.from = max(w.from, unixNano(iat.Add(-v.cfg.Leeway)))
	}
	return w
}

// unixNano is t in Unix nanoseconds, clamped to what an int64 holds (a
// token may name any year).
func unixNano(t time.Time) int64 {
	const limit = math.MaxInt64 / int64(time.Second)
	switch s := t.Unix(); {
	case s >= limit:
		return math.MaxInt64
	case s <= -limit:
		return math.MinInt64
	}
	return t.UnixNano()
}
