package pool

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// BenchmarkPoolMemoryCorrelated is BenchmarkPoolMemory with tickets as
// the frontend publishes them: each with a correlation id (24 hex
// digits), which the pool keeps (Entry.Trace) for the match's; no
// trace context, tracing off. Against BenchmarkPoolMemory: what keeping
// it costs per waiting ticket.
func BenchmarkPoolMemoryCorrelated(b *testing.B) {
	for range b.N {
		rng := rand.New(rand.NewPCG(1, 2))
		before := heapInUse()
		p := New(defaultMode(b))
		for i := range 1_000_000 {
			e := entry(i, 1600+rng.IntN(400), t0)
			e.Trace = &Trace{CorrelationID: fmt.Sprintf("%024x", i), Entered: t0.UnixNano()}
			p.Add(e)
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/float64(p.Len()), "bytes/ticket")
		runtime.KeepAlive(p)
	}
}
