package perf

import (
	"slices"
	"testing"
	"time"
)

// TestChargedPeriodIsTheLoadsWork: the CPU is charged from the last
// reading done by the first ticket sent to the first begun after the last
// assignment, so neither the tokens minted before the load nor a ticket's
// wait for its timeout after the last assignment is in it; with no times
// (an older load tool) the whole window is.
func TestChargedPeriodIsTheLoadsWork(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	var readings []reading
	for _, s := range []float64{0, 1, 2, 3, 4, 5, 30.5} { // the window's start, each second, its end
		// Each reading takes 10 ms; its CPU is the second it was begun at.
		readings = append(readings, reading{begun: at(s), done: at(s + 0.01), samples: []Sample{{CPU: time.Duration(s * float64(time.Second))}}})
	}
	for _, c := range []struct {
		name           string
		from, to       time.Time
		wantFrom, want float64
		whole          bool
	}{
		{"tokens minted, then a ticket waits out its timeout", at(1.5), at(3.2), 1, 4, false},
		{"a reading still going at the first send", at(2.005), at(4), 1, 4, false},
		{"a reading begun just before the last assignment", at(1.5), at(4.005), 1, 5, false},
		{"an older load tool", time.Time{}, time.Time{}, 0, 30.5, true},
		{"nothing assigned", at(1.5), time.Time{}, 0, 30.5, true},
		{"assigned after the last reading", at(0.2), at(31), 0, 30.5, false},
		{"before the window (clocks apart)", at(-1), at(-0.5), 0, 30.5, true},
		{"the wrong way round", at(4.5), at(1.5), 0, 30.5, true},
	} {
		first, last, whole := chargedPeriod(readings, c.from, c.to)
		if !first.begun.Equal(at(c.wantFrom)) || !last.begun.Equal(at(c.want)) || whole != c.whole {
			t.Errorf("%s: charged %s to %s (whole window %v), want %gs to %gs (%v)", c.name, first.begun.Sub(t0), last.begun.Sub(t0), whole, c.wantFrom, c.want, c.whole)
		}
		if cpu := last.samples[0].CPU - first.samples[0].CPU; cpu != at(c.want).Sub(at(c.wantFrom)) {
			t.Errorf("%s: %s of CPU between the readings, want the period's", c.name, cpu)
		}
	}
}

// TestLoadPeriodEndsWithTheProbe: the probe's tickets are charged with
// the load's, so the period ends with the later last assignment; it
// begins with the load's first ticket, not the probe's, which starts
// sending while the load tool still mints its tokens.
func TestLoadPeriodEndsWithTheProbe(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	load := LoadSummary{FirstSentAt: t0.Add(3 * time.Second), LastAssignedAt: t0.Add(10 * time.Second)}
	probe := &LoadSummary{FirstSentAt: t0.Add(100 * time.Millisecond), LastAssignedAt: t0.Add(11 * time.Second)}
	if from, to := loadPeriod(load, probe); !from.Equal(load.FirstSentAt) || !to.Equal(probe.LastAssignedAt) {
		t.Fatalf("period %s to %s, want the load's first send %s to the probe's last assignment %s", from, to, load.FirstSentAt, probe.LastAssignedAt)
	}
	if from, to := loadPeriod(load, &LoadSummary{}); !from.Equal(load.FirstSentAt) || !to.Equal(load.LastAssignedAt) {
		t.Fatalf("period %s to %s with a probe that says nothing, want the load's", from, to)
	}
	if from, to := loadPeriod(load, nil); !from.Equal(load.FirstSentAt) || !to.Equal(load.LastAssignedAt) {
		t.Fatalf("period %s to %s without a probe, want the load's", from, to)
	}
}

// TestRSSSeriesIsThinnedFromTheReadings: the RSS series is one reading
// every interval, taken from the readings the charged period uses (one
// reader for both), and none without an interval.
func TestRSSSeriesIsThinnedFromTheReadings(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	ps := []named{{name: "frontend"}}
	var readings []reading
	for i := 1; i <= 12; i++ {
		if i >= 4 && i <= 8 {
			continue // readings lost past an interval: the series goes on from the next, on its schedule
		}
		at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		readings = append(readings, reading{begun: at, done: at, samples: []Sample{{RSS: int64(i)}}})
	}
	var got []int64
	for _, p := range rssSeries(readings, ps, t0, 300*time.Millisecond) {
		got = append(got, p.RSS["frontend"])
	}
	if want := []int64{3, 9, 12}; !slices.Equal(got, want) {
		t.Fatalf("series %v, want the readings at 0.3 s, the first after the lost ones (0.9 s), and 1.2 s: %v", got, want)
	}
	if s := rssSeries(readings, ps, t0, 0); s != nil {
		t.Fatalf("series %v without an interval", s)
	}
}
