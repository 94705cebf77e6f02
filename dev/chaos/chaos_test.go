package chaos

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/dev/stack/proc"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// The short chaos run of make test: 30 s of load on 3 NATS nodes, 2
// frontends, 3 matchers, 2 allocators and 2 game servers, with a fault
// every 1.5 s or so (half of them cuts of up to 6 s: long enough for a
// takeover), and no violation allowed. The long run is cmd/chaos.
func TestChaosShort(t *testing.T) {
	bin := testkit.Env(t, "QUICKMATCH_BIN_DIR", "make test builds the services and the load tool and sets it")
	server := testkit.Env(t, "QUICKMATCH_NATS_SERVER", "make test builds bin/nats-server and sets it")
	if _, err := os.Stat(filepath.Join(bin, "load")); err != nil {
		t.Fatal(err)
	}
	// Every process's output goes to a file kept when the test fails, and
	// its tail into the test's output.
	full, ferr := os.CreateTemp("", "quickmatch-chaos-*.log")
	if ferr != nil {
		t.Fatal(ferr)
	}
	defer full.Close()
	t.Cleanup(func() {
		if !t.Failed() {
			os.Remove(full.Name())
		} else {
			t.Logf("every process's output: %s", full.Name())
		}
	})
	logs := proc.NewKept(full, 200<<10)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (cmd/chaos -seed repeats the choice of faults)", seed)
	rep, err := Run(t.Context(), Config{
		BinDir: bin, NATSServer: server, Dir: t.TempDir(),
		Rate: 20, Duration: 30 * time.Second, FaultEvery: 1500 * time.Millisecond,
		MaxWait: 15 * time.Second, Partitions: true, MaxCut: 6 * time.Second,
		Seed: seed, Logs: logs,
	})
	if err != nil {
		t.Fatalf("%v\nlast process output:\n%s", err, logs.String())
	}
	t.Logf("%d tickets acknowledged, outcomes %v, %d matches; %d faults %v; load: %s",
		rep.Tickets, rep.Outcomes, rep.Matches, rep.FaultCount, rep.Faults, rep.Load)
	for _, f := range rep.FaultLog {
		t.Log("fault", f)
	}
	for _, to := range rep.Takeovers {
		t.Logf("takeover %+v", to)
	}
	if rep.Tickets < 150 || rep.FaultCount < 4 {
		t.Errorf("too little happened: %d tickets, %d faults", rep.Tickets, rep.FaultCount)
	}
	if len(rep.Violations) > 0 {
		t.Errorf("%d violations:\n%s", len(rep.Violations), strings.Join(rep.Violations, "\n"))
		t.Logf("last process output:\n%s", logs.String())
	}
}
