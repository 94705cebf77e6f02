package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
)

// BenchmarkRoomMemory opens 10,000 rooms with no players on one server and
// reports the heap and goroutines each costs: the room itself, without the
// players' connections (load rooms measures those, from another process).
func BenchmarkRoomMemory(b *testing.B) {
	for range b.N {
		s, err := New(Config{JoinKeys: jointoken.NewKeys(), MaxRooms: 20000, IdleTimeout: time.Hour}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			b.Fatal(err)
		}
		const n = 10000
		g0 := runtime.NumGoroutine()
		before := heapInUse()
		for i := range n {
			if _, err := s.open(fmt.Sprintf("room-%d", i), seating{allocated: [][]string{{"a"}, {"b"}}}); err != nil {
				b.Fatal(err)
			}
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/n, "heap-bytes/room")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/room")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s.Drain(ctx) // ends every room at once

	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
