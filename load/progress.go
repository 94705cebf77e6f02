package main

import (
	"fmt"
	"io"
	"time"
)

// startProgress prints a progress line to w every interval until stop
// (none for interval <= 0). It goes to standard error so that the final
// report, and -json, stay alone on standard output for whoever reads it.
func (st *runStats) startProgress(w io.Writer, interval time.Duration) (stop func()) {
	if interval <= 0 {
		return func() {}
	}
	t := time.NewTicker(interval)
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		st.progress(w, time.Now(), t.C, done)
	}()
	return func() {
		t.Stop()
		close(done)
		<-finished // no line after the report has begun
	}
}

// progress writes one line at every tick until done, elapsed time being
// the tick's time less start: the ticks are given, so that a test drives
// them and the clock.
func (st *runStats) progress(w io.Writer, start time.Time, ticks <-chan time.Time, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case at := <-ticks:
			fmt.Fprintln(w, st.progressLine(at.Sub(start)))
		}
	}
}

// progressLine is the run so far: sent and assigned, the tickets that
// failed (any kind), and the median time to assignment of those assigned.
func (st *runStats) progressLine(elapsed time.Duration) string {
	st.errMu.Lock()
	var errs int64
	for _, n := range st.errs {
		errs += n
	}
	st.errMu.Unlock()
	st.histMu.Lock()
	p50 := float64(st.hist.ValueAtQuantile(50)) / 1000
	st.histMu.Unlock()
	return fmt.Sprintf("load run  %5.0fs  sent %d  assigned %d  errors %d  p50 %.1f ms",
		elapsed.Seconds(), st.sent.Load(), st.assigned.Load(), errs, p50)
}
