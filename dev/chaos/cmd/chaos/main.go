// Command chaos is the long chaos run: the system as separate processes
// on a 3-node NATS cluster, under load, with faults injected, and the
// independent checker's verdict at the end (see BENCHMARKS.md and
// README.md, Reliability).
//
//	make build-race tools
//	go run ./dev/chaos/cmd/chaos -duration 5m -rate 50 -fault-every 5s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/quickmatch-dev/quickmatch/dev/chaos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var cfg chaos.Config
	var logPath string
	flag.StringVar(&cfg.BinDir, "bin", "bin/race", "directory of the service binaries and the load tool (make build-race)")
	flag.StringVar(&cfg.NATSServer, "nats-server", "bin/nats-server", "nats-server binary (make tools)")
	flag.Float64Var(&cfg.Rate, "rate", 50, "tickets per second")
	flag.DurationVar(&cfg.Duration, "duration", 5*time.Minute, "how long the load and the faults last")
	flag.DurationVar(&cfg.FaultEvery, "fault-every", 5*time.Second, "pause between two faults")
	flag.DurationVar(&cfg.MaxWait, "max-wait", 20*time.Second, "max wait of the 1v1 mode (a ticket's deadline, plus slack)")
	flag.BoolVar(&cfg.Partitions, "partitions", true, "make some faults cuts: a NATS node from the others, a service from NATS (both ways, one way), one route of three")
	flag.Float64Var(&cfg.PartitionShare, "partition-share", 0.5, "the share of the faults that are cuts (the four kinds in turn)")
	flag.DurationVar(&cfg.MaxCut, "max-cut", 20*time.Second, "the longest a cut lasts (each lasts a quarter of it at least)")
	flag.BoolVar(&cfg.Keyed, "keyed", false, "the load's players send an Idempotency-Key and send a failed POST again with it, to the next frontend, as the TypeScript client (every browser) does; off, the unkeyed path, never asked again")
	flag.Uint64Var(&cfg.Seed, "seed", uint64(time.Now().UnixNano()), "seed of the fault choices")
	flag.StringVar(&logPath, "logs", "", "write every process's output to this file")
	flag.Parse()
	dir, err := os.MkdirTemp("", "quickmatch-chaos")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.Dir = dir
	cfg.Logs = io.Discard
	if logPath != "" {
		f, err := os.Create(logPath)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.Logs = f
	}
	for _, p := range []*string{&cfg.BinDir, &cfg.NATSServer} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "chaos: %s of %.0f tickets/s, a fault every %s, partitions %t, seed %d\n", cfg.Duration, cfg.Rate, cfg.FaultEvery, cfg.Partitions, cfg.Seed)
	rep, err := chaos.Run(ctx, cfg)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	if len(rep.Violations) > 0 {
		return fmt.Errorf("%d violations", len(rep.Violations))
	}
	return nil
}
