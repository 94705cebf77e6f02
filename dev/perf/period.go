package perf

import (
	"context"
	"time"
)

// periodEvery is how often every process is read through a leg's window,
// to find the period its load is charged for (chargedPeriod): an end of
// the period is off by this much at most, time in which the system is at
// rest (before the first ticket is sent, after the last assignment).
const periodEvery = time.Second

// readingEvery is how often a leg reads its processes: every
// periodEvery, or every rssEvery when that is shorter. One reader serves
// both the charged period and the RSS series (rssSeries thins it).
func readingEvery(rssEvery time.Duration) time.Duration {
	if rssEvery > 0 {
		return min(periodEvery, rssEvery)
	}
	return periodEvery
}

// reading is every process of the system read at one moment, in the
// order of the leg's processes: begun before the first /proc read and
// done after the last.
type reading struct {
	begun, done time.Time
	samples     []Sample
}

// readNow reads every process of ps.
func readNow(ps []named) (reading, error) {
	begun := time.Now()
	s, err := sampleAll(ps)
	return reading{begun: begun, done: time.Now(), samples: s}, err
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
			case <-t.C:
				if r, err := readNow(ps); err == nil {
					out = append(out, r)
				}
			}
		}
	}()
	return func() []reading {
		cancel()
		return <-done
	}
}

// chargedPeriod picks, of a window's readings in time order (its start
// first, its end last), the last one done by from and the first one
// begun at or after to: the system's work for the load, from its first
// ticket sent to its last assignment. The rest of the window is the load
// tool's own (the tokens it mints before sending) or a wait the system
// does no work for: a ticket left without a partner, waiting out the
// load tool's timeout (a refusal leaves its region an odd count), which
// added up to 30 s of the services at rest to every run with a refusal.
// A zero from or to keeps that end of the window, and so does an empty
// period (times from a clock apart from this one's); whole says the
// whole window was kept.
func chargedPeriod(readings []reading, from, to time.Time) (first, last reading, whole bool) {
	start, end := readings[0], readings[len(readings)-1]
	first, last = start, end
	for _, r := range readings {
		if !from.IsZero() && !r.done.After(from) {
			first = r
		}
	}
	if !to.IsZero() {
		for _, r := range readings {
			if !r.begun.Before(to) {
				last = r
				break
			}
		}
	}
	if from.IsZero() || to.IsZero() || !last.begun.After(first.done) {
		return start, end, true
	}
	return first, last, false
}

// loadPeriod is when the load's first ticket was sent and when its (or
// the probe's) last ticket was assigned; zero where the load tool did
// not say (an older build). The probe's first ticket is not: the probe
// mints its few tokens at once and starts sending while the load tool
// still mints its many (seconds at high rates), and those seconds serve
// only the probe's first tickets, whose work falls mostly outside the
// period.
func loadPeriod(load LoadSummary, probe *LoadSummary) (from, to time.Time) {
	from, to = load.FirstSentAt, load.LastAssignedAt
	if probe != nil && probe.LastAssignedAt.After(to) {
		to = probe.LastAssignedAt
	}
	return from, to
}
