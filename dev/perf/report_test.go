package perf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/dev/stack"
)

func sample(cpu time.Duration, rssMiB, peakMiB int64) Sample {
	return Sample{CPU: cpu, RSS: rssMiB << 20, Peak: peakMiB << 20}
}

// TestPerTicket: 2.5 CPU s over 5,000 tickets is 0.5 s per 1,000 and
// 500 µs a ticket; the sum adds CPU and memory and divides again; with
// no ticket assigned there is nothing per ticket.
func TestPerTicket(t *testing.T) {
	a := NewUsage("frontend", 10, sample(1500*time.Millisecond, 0, 0), sample(4*time.Second, 40, 50), 5000)
	if a.CPUSeconds != 2.5 || *a.PerThousand != 0.5 || *a.Micros != 500 || a.RSS != 40<<20 || a.Peak != 50<<20 {
		t.Fatalf("usage %+v, per 1000 %v, µs %v", a, *a.PerThousand, *a.Micros)
	}
	b := NewUsage("nats", 11, sample(0, 0, 0), sample(1250*time.Millisecond, 100, 120), 5000)
	total := Sum("total", []Usage{a, b}, 5000)
	if total.CPUSeconds != 3.75 || *total.PerThousand != 0.75 || *total.Micros != 750 || total.RSS != 140<<20 || total.Peak != 170<<20 {
		t.Fatalf("total %+v, per 1000 %v, µs %v", total, *total.PerThousand, *total.Micros)
	}
	if none := NewUsage("game-1", 12, sample(0, 0, 0), sample(time.Second, 1, 1), 0); none.PerThousand != nil || none.Micros != nil {
		t.Fatalf("no ticket assigned, yet per ticket %v %v", none.PerThousand, none.Micros)
	}
}

// TestNewLegAndPrint: throughput is per second of arrivals, the total
// leaves the load tool out, idle CPU is per second at rest, wakes are
// per ticket, and the table shows each row's figures.
func TestNewLegAndPrint(t *testing.T) {
	sum := LoadSummary{Seconds: 10, Sent: 6000, Assigned: 5000, Errors: map[string]int64{"post_503": 900, "timeout": 100},
		Latency: map[string]float64{"p50": 12.5, "p99": 80}, Accepted: map[string]float64{"p50": 1.5, "p99": 9},
		Refused: 900, RefusedLatency: map[string]float64{"p50": 2.5, "p99": 31, "max": 47.5}}
	ps := []named{{"nats (embedded)", 1}, {"frontend", 2}}
	start := []Sample{sample(time.Second, 0, 0), sample(0, 0, 0)}
	end := []Sample{sample(3*time.Second, 100, 120), sample(time.Second, 40, 50)}
	// Wakes: NATS 40,000 in the window, the frontend 15,000, the load
	// tool 25,000 (8, 3 and 5 a ticket).
	start[0].Wakes, end[0].Wakes, end[1].Wakes = 1000, 41000, 15000
	loadTool := Usage{Name: "load tool (not in total)", cpu: 5 * time.Second, Peak: 30 << 20, Wakes: 25000}
	leg := newLeg("http", 12*time.Second, sum, nil, ps, start, end, loadTool)
	// KV_players made inside the window: all of its messages and keys
	// count. TICKETS, a work queue, holds fewer subjects at the end.
	leg.Messages = NewMessages(
		stack.NATSCounts{In: 1000, Out: 2000, API: 10, Subscribed: 40, Stored: map[string]uint64{"TICKETS": 500},
			Keys:     map[string]uint64{"TICKETS": 3, "KV_claims": 100},
			ByClient: map[string]stack.InOut{"frontend": {In: 100, Out: 100}, "gone": {In: 900, Out: 900}}},
		stack.NATSCounts{In: 61000, Out: 77000, API: 15010, Subscribed: 290, Stored: map[string]uint64{"TICKETS": 5500, "KV_players": 10000, "EMPTY": 0},
			Keys:     map[string]uint64{"TICKETS": 1, "KV_claims": 100, "KV_players": 7500},
			ByClient: map[string]stack.InOut{"frontend": {In: 25100, Out: 10100}, "": {In: 5000}, "gone": {In: 900, Out: 900}}},
		5000)
	leg.RSSSeries = []RSSPoint{{Seconds: 30, RSS: map[string]int64{"nats (embedded)": 100 << 20, "frontend": 40 << 20}},
		{Seconds: 60, RSS: map[string]int64{"nats (embedded)": 110 << 20}}}
	// At rest for 2 s before the load, NATS used 0.1 s: 5% of a core.
	setIdle(&leg, 2*time.Second, []Sample{sample(900*time.Millisecond, 0, 0), sample(0, 0, 0)}, start)
	if leg.Acknowledged != 5100 || leg.AckPerSecond != 510 || leg.AssignedPerSecond != 500 {
		t.Fatalf("leg %+v", leg)
	}
	if leg.Total.CPUSeconds != 3 || *leg.Total.Micros != 600 || *leg.LoadTool.Micros != 1000 {
		t.Fatalf("total %+v (µs %v), load tool %+v", leg.Total, *leg.Total.Micros, leg.LoadTool)
	}
	var out strings.Builder
	Print(&out, Report{Rate: 600, Duration: 10, Burst: 40, Legs: []Leg{leg}})
	for _, want := range []string{
		"arrivals in bursts of 40 at the same mean rate",
		"== http: 6000 sent, 5100 acknowledged (510.0/s), 5000 assigned (500.0/s); window 12.0 s",
		"p50 12.5 ms, p99 80.0 ms (POST to assignment)",
		"error post_503: 900",
		"refused 900: p50 2.5 ms, p99 31.0 ms, max 47.5 ms (POST to 503)",
		"nats (embedded) 1 2.00 0.400 400 8.0 5.0 100.0 120.0",
		"frontend 2 1.00 0.200 200 3.0 0.0 40.0 50.0",
		"total 3.00 0.600 600 11.0 5.0 140.0 170.0",
		"load tool (not in total) 5.00 1.000 1000 5.0 - - 30.0",
		"nats per ticket: 12.0 messages in, 15.0 out, 3.0 JetStream API requests, 0.050 subscriptions made, 3.0 stored: KV_players 2.00 TICKETS 1.00 nats keys added per ticket (kept while their messages live): 1.50: KV_players 1.50 nats per ticket by connection (in/out): (unnamed) 1.0/0.0 frontend 5.0/2.0",
		"RSS MiB through the window: at s nats (embedded) frontend 30 100.0 40.0 60 110.0 -",
	} {
		// Columns are padded with spaces: compare one space for many.
		if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// TestProbeAndWindowsPrinted: a probe's tickets are charged with the
// load's, and its latency and refusals are printed apart; so is each
// window of the load.
func TestProbeAndWindowsPrinted(t *testing.T) {
	sum := LoadSummary{Seconds: 10, Sent: 1000, Assigned: 990, Latency: map[string]float64{"p50": 12.5, "p99": 80}, Accepted: map[string]float64{"p50": 1.5, "p99": 9},
		Windows: []LoadWindow{{FromSeconds: 0, Sent: 500, Assigned: 495, Latency: map[string]float64{"p50": 11, "p99": 70}, Refused: 5, RefusedLatency: map[string]float64{"p50": 3, "p99": 40, "max": 41}},
			{FromSeconds: 5, Sent: 500, Assigned: 495, Latency: map[string]float64{"p50": 14, "p99": 90}}}}
	probe := &LoadSummary{Rate: 6, Seconds: 10, Sent: 60, Assigned: 10, Latency: map[string]float64{"p50": 20, "p99": 30}, Accepted: map[string]float64{"p50": 2, "p99": 4},
		Refused: 50, RefusedLatency: map[string]float64{"p50": 1.5, "p99": 2.5, "max": 3}}
	ps := []named{{"frontend", 2}}
	leg := newLeg("http", 10*time.Second, sum, probe, ps, []Sample{sample(0, 0, 0)}, []Sample{sample(time.Second, 40, 50)}, Usage{Name: "load tool (not in total)"})
	if *leg.Total.Micros != 1000 || leg.AssignedPerSecond != 99 {
		t.Fatalf("1 s over 990 + 10 tickets: %v µs a ticket; %v assigned/s", *leg.Total.Micros, leg.AssignedPerSecond)
	}
	var out strings.Builder
	Print(&out, Report{Rate: 100, Duration: 10, Legs: []Leg{leg}})
	for _, want := range []string{
		"probe 6/s on its own connection: 10 assigned, p50 20.0 ms, p99 30.0 ms (POST to assignment); accepted p50 2.0 ms, p99 4.0 ms; refused 50: p50 1.5 ms, p99 2.5 ms, max 3.0 ms",
		"from 0 s sent 500, assigned 495: p50 11.0 ms, p99 70.0 ms; refused 5: p50 3.0 ms, p99 40.0 ms, max 41.0 ms",
		"from 5 s sent 500, assigned 495: p50 14.0 ms, p99 90.0 ms process",
	} {
		// Columns are padded with spaces: compare one space for many.
		if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestNewMessagesWithNoneAssigned(t *testing.T) {
	if m := NewMessages(stack.NATSCounts{}, stack.NATSCounts{In: 5}, 0); m != nil {
		t.Fatalf("messages per ticket of no ticket: %+v", m)
	}
}

func TestAcknowledged(t *testing.T) {
	s := LoadSummary{Sent: 100, Errors: map[string]int64{
		"post_503": 10, "post_error": 1, "publish_timeout": 2, "token_error": 1, // never acknowledged
		"timeout": 3, "expired": 1, "events_error": 4, // acknowledged, then lost or late
	}}
	if got := s.Acknowledged(); got != 86 {
		t.Fatalf("acknowledged %d, want 86", got)
	}
	if _, err := ParseLoadSummary([]byte(`{"rate_per_second": 1}`)); err == nil {
		t.Fatal("a summary without tickets passed")
	}
	got, err := ParseLoadSummary([]byte(`{"tickets_sent": 8, "assigned": 6, "seconds": 1, "errors_by_kind": {"post_503": 2}, "latency_ms": {"p50": 3, "p99": 9}, "accepted_ms": {"p50": 1},
		"refused": 2, "refused_ms": {"p50": 4, "p99": 7, "max": 7}}`))
	if err != nil || got.Sent != 8 || got.Assigned != 6 || got.Latency["p99"] != 9 || got.Accepted["p50"] != 1 || got.Refused != 2 || got.RefusedLatency["p99"] != 7 {
		t.Fatalf("ParseLoadSummary = %+v, %v", got, err)
	}
}

// TestValidate: a ticket count that leaves a region with an odd one is
// refused (it would wait out its max wait inside the window), as are an
// unknown leg and missing binaries; every error is reported at once.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	for _, b := range []string{"frontend", "matcher", "allocator", "game", "load"} {
		if err := os.WriteFile(filepath.Join(dir, b), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ok := Config{BinDir: dir, Rate: 200, Duration: 12 * time.Second, Regions: "eu,us,asia", Vias: []string{"http", "ws", "nats"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := ok
	bad.Duration, bad.Vias, bad.BinDir, bad.Burst, bad.ProbeRate, bad.Interval = 10*time.Second, []string{"sse"}, t.TempDir(), -1, 2, -time.Second
	err := bad.Validate()
	for _, want := range []string{"2000 tickets: want a multiple of 6", `via "sse"`, "binary load missing", "burst -1", "probe rate 2/s × duration = 20 tickets", "interval -1s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want one with %q", err, want)
		}
	}
}
