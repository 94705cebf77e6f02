package perf

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// BinDirEnv points at built binaries with the load tool (make test sets
// it to bin/race). Without it the real run is skipped: building every
// binary here would make the test slow, and dev/stack's tests already
// cover the stack and the load tool; this one covers perf's wiring.
const BinDirEnv = "QUICKMATCH_BIN_DIR"

// TestRunShort runs both legs briefly on real stacks: every ticket is
// acknowledged and assigned, each leg has a fresh stack whose every
// process is sampled (NATS in this process), and the total is the sum of
// the processes, the load tool apart. The figures themselves are not
// asserted: race builds on a shared machine say nothing of cost.
func TestRunShort(t *testing.T) {
	dir := os.Getenv(BinDirEnv)
	if dir == "" {
		t.Skipf("%s not set: no binaries to run (make test sets it)", BinDirEnv)
	}
	if _, err := os.Stat(filepath.Join(dir, "load")); err != nil {
		t.Skipf("no load tool in %s: %v", dir, err)
	}
	// Overload control off: race builds on a machine busy with the other
	// tests' stacks can take long enough over a creation for it to refuse
	// a few of the 60 (make test once saw 9 POSTs refused with 503, most
	// likely that: not reproduced alone or under load), and how much load
	// the stack takes is not what this test covers.
	// In bursts of 6: the load tool is told so (its command line, in
	// what perf says as it goes).
	var said testkit.SyncBuffer
	cfg := Config{BinDir: dir, Rate: 60, Duration: time.Second, Timeout: 20 * time.Second, Skills: "1800-1810",
		Regions: "eu,us,asia", Vias: []string{"http", "ws", "nats"}, Idle: 300 * time.Millisecond, RSSEvery: 100 * time.Millisecond, Stderr: &said,
		ServiceEnv: []string{"OVERLOAD_TARGET=0"}, Burst: 6, ProbeRate: 6, Interval: 500 * time.Millisecond}
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(said.String(), " -rate 6 "); n != 3 {
		t.Fatalf("%d probes of 3 legs:\n%s", n, said.String())
	}
	if n := strings.Count(said.String(), " -burst 6 "); n != 3 || rep.Burst != 6 {
		t.Fatalf("-burst 6 given to %d load runs of 3, report's burst %d:\n%s", n, rep.Burst, said.String())
	}
	if len(rep.Legs) != 3 || rep.Legs[0].Via != "http" || rep.Legs[1].Via != "ws" || rep.Legs[2].Via != "nats" {
		t.Fatalf("legs %+v", rep.Legs)
	}
	want := []string{"nats (embedded)", "frontend", "matcher-1", "matcher-2", "allocator", "game-1", "game-2"}
	for i, leg := range rep.Legs {
		if leg.Load.Sent != 60 || leg.Acknowledged != 60 || leg.Load.Assigned != 60 || len(leg.Load.Errors) != 0 {
			t.Fatalf("%s: sent %d, acknowledged %d, assigned %d, errors %v", leg.Via, leg.Load.Sent, leg.Acknowledged, leg.Load.Assigned, leg.Load.Errors)
		}
		// The probe ran beside the load, its own tickets through the same
		// system; the load's are split into its two windows.
		if p := leg.Probe; p == nil || p.Sent != 6 || p.Assigned != 6 || p.Latency["p50"] <= 0 {
			t.Fatalf("%s: probe %+v", leg.Via, leg.Probe)
		}
		if w := leg.Load.Windows; len(w) != 2 || w[0].Sent+w[1].Sent != 60 || w[0].Assigned+w[1].Assigned != 60 {
			t.Fatalf("%s: windows %+v", leg.Via, w)
		}
		var names []string
		var cpu time.Duration
		for _, p := range leg.Processes {
			names = append(names, p.Name)
			cpu += p.cpu
			if p.RSS <= 0 || p.Peak < p.RSS || p.PerThousand == nil {
				t.Errorf("%s: %+v", leg.Via, p)
			}
		}
		if !slices.Equal(names, want) || leg.Processes[0].Pid != os.Getpid() {
			t.Fatalf("%s: processes %v (nats pid %d, this one %d), want %v", leg.Via, names, leg.Processes[0].Pid, os.Getpid(), want)
		}
		// The CPU is charged from the first arrival to the last
		// assignment, which the load tool tells, within the window (its
		// last reading comes just after the window's end).
		if l := leg.Load; l.FirstSentAt.IsZero() || !l.LastAssignedAt.After(l.FirstSentAt) || leg.ChargedSeconds <= 0 || leg.ChargedSeconds > leg.WindowSeconds+0.5 {
			t.Fatalf("%s: arrivals from %s, last assigned at %s, charged %.2f s of the %.2f s window", leg.Via, l.FirstSentAt, l.LastAssignedAt, leg.ChargedSeconds, leg.WindowSeconds)
		}
		if leg.Total.cpu != cpu || cpu <= 0 || leg.LoadTool.CPUSeconds <= 0 || leg.LoadTool.Peak <= 0 || leg.IdleSeconds != 0.3 {
			t.Fatalf("%s: total %+v of %s, load tool %+v", leg.Via, leg.Total, cpu, leg.LoadTool)
		}
		// Each ticket is stored once in its stream, and taken for its
		// player (two players' bucket entries: the ticket's, the player's),
		// keys that outlive the run; it has its one claim.
		if m := leg.Messages; m == nil || m.Stored["TICKETS"] < 1 || m.Stored["KV_players"] < 2 || m.KeysAdded["KV_players"] < 2 || m.KeysAdded["KV_claims"] < 1 || m.In <= 0 || m.Out <= 0 || m.API <= 0 {
			t.Fatalf("%s: messages per ticket %+v", leg.Via, leg.Messages)
		}
		if len(leg.RSSSeries) == 0 || leg.RSSSeries[0].RSS["frontend"] <= 0 {
			t.Fatalf("%s: RSS series %+v", leg.Via, leg.RSSSeries)
		}
		if i > 0 && leg.Processes[1].Pid == rep.Legs[0].Processes[1].Pid {
			t.Fatalf("the frontend of both legs is pid %d: not a fresh stack", leg.Processes[1].Pid)
		}
	}
}
