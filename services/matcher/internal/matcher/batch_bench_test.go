package matcher

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkCommit commits the 40 matches of a tick as one batch, and one
// goroutine per match (each a batch of one: the design before batches),
// against an embedded NATS server in this process. It reports, per
// match, the matcher connection's writes (system calls) and the CPU time
// of the whole process (the server's included), which is what a match
// costs the system; ns/op is wall time per tick, on a shared machine
// only a hint.
func BenchmarkCommit(b *testing.B) {
	const n = 40
	for _, way := range []string{"batch", "goroutine_per_match"} {
		b.Run(way, func(b *testing.B) {
			e := newEnv(b)
			d := &countingDialer{}
			r := newRunner(e.countedWorker(b, d), euGold)
			ticks := make([][]formed, b.N)
			for i := range ticks {
				ticks[i] = e.formedMatches(b, r, fmt.Sprintf("%s-%d", way, i), n)
			}
			writes, cpu := d.writes.Load(), cpuTime(b)
			b.ResetTimer()
			for _, batch := range ticks {
				if way == "batch" {
					r.commits.commitBatch(b.Context(), batch, nil, func(commitOutcome) {})
					continue
				}
				var wg sync.WaitGroup
				for _, f := range batch {
					wg.Go(func() { r.commits.commit(b.Context(), f.p, f.match, f.ids, f.all, nil, f.now) })
				}
				wg.Wait()
			}
			b.StopTimer()
			matches := float64(b.N * n)
			b.ReportMetric(float64(d.writes.Load()-writes)/matches, "writes/match")
			b.ReportMetric(float64((cpuTime(b)-cpu).Microseconds())/matches, "cpu-µs/match")
		})
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
