package perf

import (
	"testing"
	"time"
)

// TestChargedSpanIsTheLoadsWork: the CPU is charged from the last reading
// at or before the first arrival to the first at or after the last
// assignment, so neither the tokens minted before the arrivals nor a
// ticket's wait for its timeout after the last assignment is in it; with
// no times (an older load tool) the whole window is.
func TestChargedSpanIsTheLoadsWork(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	var readings []reading
	for _, s := range []float64{0, 1, 2, 3, 4, 5, 30.5} { // the window's start, each second, its end
		readings = append(readings, reading{at: at(s), samples: []Sample{{CPU: time.Duration(s * float64(time.Second))}}})
	}
	for _, c := range []struct {
		name           string
		from, to       time.Time
		wantFrom, want float64
	}{
		{"tokens minted, then a ticket waits out its timeout", at(1.5), at(3.2), 1, 4},
		{"on a reading", at(2), at(4), 2, 4},
		{"an older load tool", time.Time{}, time.Time{}, 0, 30.5},
		{"nothing assigned", at(1.5), time.Time{}, 1, 30.5},
		{"assigned after the last reading", at(0.2), at(31), 0, 30.5},
		{"before the window (clocks apart)", at(-1), at(-0.5), 0, 30.5},
		{"the wrong way round", at(4.5), at(1.5), 0, 30.5},
	} {
		first, last := chargedSpan(readings, c.from, c.to)
		if !first.at.Equal(at(c.wantFrom)) || !last.at.Equal(at(c.want)) {
			t.Errorf("%s: charged %s to %s, want %gs to %gs", c.name, first.at.Sub(t0), last.at.Sub(t0), c.wantFrom, c.want)
		}
	}
}

// TestLoadSpanTakesTheProbesToo: the probe's tickets are charged with the
// load's, so the span runs from the earlier first arrival to the later
// last assignment.
func TestLoadSpanTakesTheProbesToo(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	load := LoadSummary{ArrivalsFrom: t0.Add(time.Second), LastAssignedAt: t0.Add(10 * time.Second)}
	probe := &LoadSummary{ArrivalsFrom: t0.Add(900 * time.Millisecond), LastAssignedAt: t0.Add(11 * time.Second)}
	if from, to := loadSpan(load, probe); !from.Equal(probe.ArrivalsFrom) || !to.Equal(probe.LastAssignedAt) {
		t.Fatalf("span %s to %s, want the probe's %s to %s", from, to, probe.ArrivalsFrom, probe.LastAssignedAt)
	}
	if from, to := loadSpan(load, &LoadSummary{}); !from.Equal(load.ArrivalsFrom) || !to.Equal(load.LastAssignedAt) {
		t.Fatalf("span %s to %s with a probe that says nothing, want the load's", from, to)
	}
	if from, to := loadSpan(load, nil); !from.Equal(load.ArrivalsFrom) || !to.Equal(load.LastAssignedAt) {
		t.Fatalf("span %s to %s without a probe, want the load's", from, to)
	}
}
