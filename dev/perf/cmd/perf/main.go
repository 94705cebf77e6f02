// Command perf measures what a ticket costs: on a fresh local stack per
// leg it drives the system with the load tool over HTTP, then over NATS,
// and reports each process's CPU seconds per 1,000 tickets (from /proc),
// throughput, p50/p99 and memory.
//
// `make perf` runs it on the binaries of `make build` (RATE and DURATION
// per leg); BENCHMARKS.md, "The lean path (issue #20)", has the method.
// The package dev/perf holds how it measures.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/quickmatch-dev/quickmatch/dev/perf"
	"github.com/quickmatch-dev/quickmatch/dev/stack"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
)

// about says what perf is: the first line of its -h and of its package
// comment (TestHelp checks that they agree).
const about = "perf measures what a ticket costs: on a fresh local stack per leg it drives the system with the load tool over HTTP, then over NATS, and reports each process's CPU seconds per 1,000 tickets (from /proc), throughput, p50/p99 and memory."

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	os.Exit(service.ExitCode(os.Stderr, "perf", err))
}

func run(ctx context.Context, args []string) error {
	cfg := perf.Config{Stderr: os.Stderr}
	var vias, serviceEnv, jsonPath, logPath string
	fs := envflag.NewFlagSet("perf", about)
	fs.StringVar(&cfg.BinDir, "bin-dir", "bin", "directory of the service binaries and the load tool (make build; go build -o bin/load ./load): production builds, not bin/race")
	fs.Float64Var(&cfg.Rate, "rate", 500, "tickets per second, each leg (rate × duration: a multiple of twice the regions, so that every ticket has a partner)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long tickets arrive, each leg")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "how long one ticket may wait for its assignment (the load tool's -timeout)")
	fs.StringVar(&cfg.Skills, "skills", "1800-1810", "skill range of the tickets; the default keeps a partner always in range, as issue #20's targets are stated")
	fs.IntVar(&cfg.Players, "players", 0, "players who send the tickets, each asking again once their ticket has its outcome (the load tool's -players); 0: a new player for every ticket")
	fs.IntVar(&cfg.Burst, "burst", 0, "tickets arrive this many at one instant, at the same mean rate (the load tool's -burst): what arriving together saves (0 or 1: one at a time)")
	fs.StringVar(&cfg.Regions, "regions", "eu,us,asia", "regions the tickets are spread over, in turn")
	fs.StringVar(&vias, "via", "http,nats", "the legs, in order: http (POST, then Server-Sent Events to the assignment, a token per player), ws (a WebSocket per ticket, /ws/events: queued and followed on it, a token per player), nats (published on JetStream)")
	fs.BoolVar(&cfg.HTTP1, "http1", false, "the http leg speaks HTTP/1.1 (the load tool's -h2c=false), as clients behind a proxy that does not speak h2c: a connection per request in flight")
	fs.BoolVar(&cfg.Keyed, "idempotency-keys", false, "send an Idempotency-Key with every POST of the http leg, as every browser does (the frontend's keyed creation path)")
	fs.IntVar(&cfg.Retries, "retries", 0, "with -idempotency-keys, send a POST of the http leg that failed (refused for now, or unanswered) again with its key up to N times, as the TypeScript client does (8): what refusals at overload bring back (the load tool's -retries)")
	fs.IntVar(&cfg.Connections, "connections", 1, "source addresses the http and ws legs' load tool spreads its connections over (its -source-ips), as a load balancer or many players would: over h2c, that many connections carry the requests (1: one carries every one); the ws leg's sockets, a socket per ticket, come from that many addresses")
	fs.StringVar(&serviceEnv, "service-env", "", "extra KEY=VALUE settings for every service, comma-separated (LOG_LEVEL=warn is set)")
	fs.IntVar(&cfg.ServiceProcs, "service-procs", stack.DefaultServiceProcs(), "GOMAXPROCS of each service process (as make run: a quarter of the cores, at least 2); the embedded NATS server keeps every core")
	fs.DurationVar(&cfg.Idle, "idle", 5*time.Second, "measure each process's CPU this long on the stack at rest before the load (its idle share of the charged period); 0: not measured")
	fs.DurationVar(&cfg.Progress, "progress", 5*time.Second, "the load tool's progress line to standard error this often; 0: none")
	fs.IntVar(&cfg.PprofBasePort, "pprof-base-port", 0, "serve Go's profiles on 127.0.0.1: the embedded NATS server's on this port, each service's on the next ones (listed in -logs); 0: off")
	fs.Float64Var(&cfg.ProbeRate, "probe-rate", 0, "also run a second load tool at this rate beside the load, over the same transport, from its own process and connection, and report its latency and refusals: what a player meets while the load runs (the load tool's own figures at high rates include its own waits); 0: none")
	fs.DurationVar(&cfg.Interval, "interval", 0, "split each leg's tickets by arrival time into windows this long (the load tool's -interval) and print each window's latency and refusals: whether slow answers are spread over the run or gathered; 0: not split")
	fs.DurationVar(&cfg.RSSEvery, "rss-every", 0, "sample each process's resident memory this often through the window and print the series (a long run's memory trend); 0: end and peak only")
	fs.StringVar(&jsonPath, "json", "", "also write the report as JSON to this file")
	fs.StringVar(&logPath, "logs", "", "write every service's output to this file")
	if err := envflag.Parse(fs, args); err != nil {
		return err
	}
	if cfg.Retries != 0 && (!cfg.Keyed || cfg.Retries < 0) {
		return fmt.Errorf("-retries %d: want 0, or more with -idempotency-keys (a POST sent again without its key may queue a second ticket)", cfg.Retries)
	}
	cfg.Vias = strings.Split(vias, ",")
	if serviceEnv != "" {
		cfg.ServiceEnv = strings.Split(serviceEnv, ",")
	}
	var err error
	if cfg.BinDir, err = filepath.Abs(cfg.BinDir); err != nil {
		return err
	}
	if logPath != "" {
		f, err := os.Create(logPath)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.Logs = f
	}
	rep, runErr := perf.Run(ctx, cfg)
	// The legs that ran are reported even when a later one failed.
	if len(rep.Legs) > 0 {
		perf.Print(os.Stdout, rep)
		if jsonPath != "" {
			if err := writeJSON(jsonPath, rep); err != nil {
				return err
			}
		}
	}
	return runErr
}

// writeJSON writes rep to path, indented.
func writeJSON(path string, rep perf.Report) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
