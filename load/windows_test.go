package main

import (
	"strings"
	"testing"
	"time"
)

// TestWindowsTimeTheirRefusals: each -interval window has its own
// refusals and their latency, so that a run's slow 503s show whether
// they were spread over it or gathered in some seconds of it.
func TestWindowsTimeTheirRefusals(t *testing.T) {
	t.Parallel()
	st := newRunStats(2*time.Second, time.Second)
	t0 := time.Now()
	st.record(0, t0, t0.Add(5*time.Millisecond), refusedKind)
	st.record(0, t0, t0.Add(7*time.Millisecond), refusedKind)
	st.record(1, t0, t0.Add(300*time.Millisecond), refusedKind)
	st.record(1, t0.Add(-20*time.Millisecond), t0, "")
	res := st.result(2, 2*time.Second, time.Second)
	if len(res.Windows) != 2 {
		t.Fatalf("windows %+v", res.Windows)
	}
	first, second := res.Windows[0], res.Windows[1]
	if first.Refused != 2 || first.RefusedLatency["max"] < 6.9 || first.RefusedLatency["max"] > 7.1 || first.Assigned != 0 {
		t.Errorf("first window %+v", first)
	}
	if second.Refused != 1 || second.RefusedLatency["p50"] < 299 || second.Assigned != 1 {
		t.Errorf("second window %+v", second)
	}
	if res.Refused != 3 {
		t.Errorf("run refused %d, want 3", res.Refused)
	}
	var out strings.Builder
	res.print(&out, "http")
	if !strings.Contains(out.String(), "from     0s  sent 0  assigned 0  p50 0.0  p99 0.0  max 0.0 ms  refused 2  p50 5.0  p99 7.0  max 7.0 ms\n") {
		t.Errorf("report:\n%s", out.String())
	}
}
