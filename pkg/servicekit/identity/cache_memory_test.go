package identity

import (
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"strconv"
	"testing"
)

// BenchmarkTokenCacheChurn is what a full cache of the default size holds
// once many more tokens than it keeps have passed through it, as a
// frontend's does after a while of new players (every b.N tokens put,
// none asked for again): heap-KiB is the heap the cache holds at the end.
// Its entries are bounded; its maps keep room for the slots evictions
// free, and grow to a steady size (BENCHMARKS.md, "Fourteenth round":
// run with -benchtime 100000x, then 800000x).
func BenchmarkTokenCacheChurn(b *testing.B) {
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	c := newTokenCache(DefaultTokenCacheSize)
	var n [8]byte
	i := 0
	for b.Loop() {
		binary.LittleEndian.PutUint64(n[:], uint64(i))
		k := cacheKey(sha256.Sum256(n[:]))
		c.put(&k, entry{caller: Caller{PlayerID: "player-" + strconv.Itoa(i)}})
		i++
	}
	b.StopTimer()
	if l := c.len(); l > DefaultTokenCacheSize {
		b.Fatalf("%d entries held, bound %d", l, DefaultTokenCacheSize)
	}
	b.ReportMetric(float64(heap()-before)/1024, "heap-KiB")
	runtime.KeepAlive(c)
}
