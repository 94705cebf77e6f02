package main

import (
	"context"
	"time"
)

// hold and rooms share their method of measuring: open many clients at a
// steady rate (ramp), wait until all are in or failed (awaitAll), and read
// what they cost the server from its /metrics (memory).

// memory is a server's memory before and after a run filled it, as its
// /metrics tells. Its fields sit in hold's and rooms' JSON results.
type memory struct {
	RSSBefore  float64 `json:"rss_before_bytes"`
	RSSAfter   float64 `json:"rss_after_bytes"`
	HeapBefore float64 `json:"heap_inuse_before_bytes"`
	HeapAfter  float64 `json:"heap_inuse_after_bytes"`
	Goroutines float64 `json:"goroutines_after"`
}

// before takes the figures of a scrape before the run.
func (m *memory) before(metrics map[string]float64) {
	m.RSSBefore, m.HeapBefore = metrics["process_resident_memory_bytes"], metrics["go_memstats_heap_inuse_bytes"]
}

// after takes the figures of a scrape once the run is in.
func (m *memory) after(metrics map[string]float64) {
	m.RSSAfter, m.HeapAfter = metrics["process_resident_memory_bytes"], metrics["go_memstats_heap_inuse_bytes"]
	m.Goroutines = metrics["go_goroutines"]
}

// per is the growth of RSS and heap for each of n things (zero for none).
func (m memory) per(n float64) (rss, heap float64) {
	if n <= 0 {
		return 0, 0
	}
	return (m.RSSAfter - m.RSSBefore) / n, (m.HeapAfter - m.HeapBefore) / n
}

// ramp calls open(0..n-1) at rate a second, and stops early when open
// says so. It returns when it started, to time the ramp.
func ramp(n int, rate float64, open func(i int) bool) time.Time {
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := range n {
		if !open(i) {
			break
		}
		if d := time.Until(start.Add(time.Duration(i+1) * interval)); d > 0 {
			time.Sleep(d)
		}
	}
	return start
}

// awaitAll waits until done says every client is in or failed, for a
// minute at most: a run reports what it got rather than hang.
func awaitAll(ctx context.Context, done func() bool) {
	deadline := time.Now().Add(60 * time.Second)
	for !done() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
}
