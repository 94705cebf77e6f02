package perf

import (
	"context"
	"time"
)

// spanEvery is how often every process's CPU is read through a leg's
// window, to find the span its load was charged for (chargedSpan): an
// end of the span is off by this much at most, time in which the system
// is at rest (before the first arrival, after the last assignment).
const spanEvery = time.Second

// reading is every process of the system read at one moment, in the
// order of the leg's processes.
type reading struct {
	at      time.Time
	samples []Sample
}

// readEvery reads every process of ps every interval from now until the
// function it returns is called, which returns the readings (none when
// every is 0). A reading in which a process could not be read is left
// out.
func readEvery(ctx context.Context, ps []named, every time.Duration) func() []reading {
	if every <= 0 {
		return func() []reading { return nil }
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan []reading, 1)
	go func() {
		var out []reading
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				done <- out
				return
			case now := <-t.C:
				if s, err := sampleAll(ps); err == nil {
					out = append(out, reading{at: now, samples: s})
				}
			}
		}
	}()
	return func() []reading {
		cancel()
		return <-done
	}
}

// chargedSpan picks, of a window's readings in time order (its start
// first, its end last), the last one at or before from and the first one
// at or after to: the system's work for the load, from its first arrival
// to its last assignment. The rest of the window is the load tool's own
// (the tokens it mints before its arrivals) or a wait the system does no
// work for: a ticket left without a partner, waiting out the load tool's
// timeout (a refusal leaves its region an odd count), which added up to
// 30 s of the services at rest to every run with a refusal. A zero from
// or to keeps that end of the window, and so does an empty span (times
// from a clock apart from this one's).
func chargedSpan(readings []reading, from, to time.Time) (first, last reading) {
	start, end := readings[0], readings[len(readings)-1]
	first, last = start, end
	for _, r := range readings {
		if !from.IsZero() && !r.at.After(from) {
			first = r
		}
	}
	if !to.IsZero() {
		for _, r := range readings {
			if !r.at.Before(to) {
				last = r
				break
			}
		}
	}
	if !last.at.After(first.at) {
		return start, end
	}
	return first, last
}

// loadSpan is when the load's (and the probe's) arrivals began and when
// their last ticket was assigned; zero where the load tool did not say
// (an older build).
func loadSpan(load LoadSummary, probe *LoadSummary) (from, to time.Time) {
	from, to = load.ArrivalsFrom, load.LastAssignedAt
	if probe == nil {
		return from, to
	}
	if p := probe.ArrivalsFrom; !p.IsZero() && (from.IsZero() || p.Before(from)) {
		from = p
	}
	if p := probe.LastAssignedAt; p.After(to) {
		to = p
	}
	return from, to
}
