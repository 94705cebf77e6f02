package identity

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"runtime"
	"strconv"
	"testing"
)

// heapInUse is the heap live after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// churnKey is the i-th of distinct keys, and a caller to remember by it.
func churnKey(i int) (cacheKey, entry) {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(i))
	return cacheKey(sha256.Sum256(n[:])), entry{caller: Caller{PlayerID: "player-" + strconv.Itoa(i)}, window: window{math.MinInt64, math.MaxInt64}}
}

// TestTokenCacheStaysAtItsFirstFill: a full cache through which ten times
// its size of new tokens pass, as a frontend's on a launch day of new
// players, holds no more memory than once first full, and still holds
// each shard's newest entries. Before each shard's map was compacted at
// every turn of its ring, it grew to 1.8 times that (7,904 KiB against
// 4,316 at the default size).
func TestTokenCacheStaysAtItsFirstFill(t *testing.T) {
	before := heapInUse()
	c := newTokenCache(DefaultTokenCacheSize)
	i := 0
	put := func(n int) {
		for range n {
			k, e := churnKey(i)
			c.put(&k, e)
			i++
		}
	}
	put(DefaultTokenCacheSize)
	full := heapInUse() - before
	put(10 * DefaultTokenCacheSize)
	churned := heapInUse() - before
	if churned > full+full/5 {
		t.Fatalf("cache holds %d KiB after churn, %d KiB when first full", churned>>10, full>>10)
	}
	// Each shard holds the last len(ring) keys put into it.
	want := map[*cacheShard]int{}
	for j := i - 1; j >= 0; j-- {
		k, e := churnKey(j)
		s := c.shard(&k)
		if want[s] == len(s.ring) {
			continue
		}
		want[s]++
		if got, ok := c.get(&k, 0, 0); !ok || got != e.caller {
			t.Fatalf("key %d (of %d put) not held: %+v, %v", j, i, got, ok)
		}
	}
	if n := c.len(); n != DefaultTokenCacheSize {
		t.Fatalf("%d entries held, want %d", n, DefaultTokenCacheSize)
	}
	runtime.KeepAlive(c)
}

// TestLargeCachesHaveMoreShards: a shard's compaction copies its map
// under its lock, so no shard holds more than maxShardEntries, whatever
// size is configured (review R15: at the largest size, 16 shards of
// 262,144 entries each stalled 0.1-0.2 s at every turn).
func TestLargeCachesHaveMoreShards(t *testing.T) {
	for _, c := range []struct{ size, shards int }{
		{1, 1}, {8, 8}, {DefaultTokenCacheSize, 16}, {1 << 18, 16}, {1<<18 + 16, 32}, {1 << 20, 64}, {MaxTokenCacheSize, 256},
	} {
		n := shardsFor(c.size)
		if n != c.shards || c.size/n > maxShardEntries {
			t.Errorf("a cache of %d: %d shards of %d, want %d", c.size, n, c.size/n, c.shards)
		}
	}
}

// BenchmarkTokenCacheChurn is what a full cache of the default size holds
// once many more tokens than it keeps have passed through it, as a
// frontend's does after a while of new players (every b.N tokens put,
// none asked for again): heap-KiB is the heap the cache holds at the end.
// Its entries are bounded, and so are its maps since they are compacted
// at every turn of a shard's ring (BENCHMARKS.md, "Fifteenth round": run
// with -benchtime 100000x, then 800000x).
func BenchmarkTokenCacheChurn(b *testing.B) {
	before := heapInUse()
	c := newTokenCache(DefaultTokenCacheSize)
	i := 0
	for b.Loop() {
		k, e := churnKey(i)
		c.put(&k, e)
		i++
	}
	b.StopTimer()
	if l := c.len(); l > DefaultTokenCacheSize {
		b.Fatalf("%d entries held, bound %d", l, DefaultTokenCacheSize)
	}
	b.ReportMetric(float64(heapInUse()-before)/1024, "heap-KiB")
	runtime.KeepAlive(c)
}
