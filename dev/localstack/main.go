// Command localstack runs the whole system on this machine, as `make run`
// does: an embedded NATS JetStream server, and the frontend, matcher,
// allocator and two game servers as child processes. NATS keeps its data
// in a local directory. No Kubernetes, no Docker.
//
// It keeps the services running as Kubernetes would: one that exits is
// started again after a backoff, the exit and the restart logged, so that
// killing a matcher shows the other taking its shards. Ctrl-C stops
// everything.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/quickmatch-dev/quickmatch/dev/stack"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
)

// about says what localstack is: the first line of its -h
// and of its package comment (TestHelp checks that they agree).
const about = "localstack runs the whole system on this machine, as `make run` does: an embedded NATS JetStream server, and the frontend, matcher, allocator and two game servers as child processes."

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	// Not service.Main: "probe URL" means nothing here.
	os.Exit(service.ExitCode(os.Stderr, "localstack", err))
}

func run(ctx context.Context, args []string) error {
	cfg := stack.Config{Logs: os.Stdout, Supervise: true}
	var games, matchers, services, extraEnv string
	fs := envflag.NewFlagSet("localstack", about)
	fs.StringVar(&cfg.BinDir, "bin-dir", "bin", "directory of the service binaries (make build)")
	fs.StringVar(&cfg.DataDir, "data-dir", identity.DevDataDir, "directory of JetStream's files, kept between runs")
	fs.StringVar(&cfg.Host, "host", "127.0.0.1", "address every service listens on")
	fs.IntVar(&cfg.NATSPort, "nats-port", 4222, "NATS client port (the nats CLI's default); NATS listens on 127.0.0.1 only")
	fs.StringVar(&cfg.NATSConfig, "nats-config", "", "NATS server configuration with the services' users (default: deploy/nats/nats.conf of this repository); passwords are made each run")
	fs.IntVar(&cfg.PprofBasePort, "pprof-base-port", 0, "serve Go's profiles (/debug/pprof/): the embedded NATS server's on this port, each service's on the next ones (printed); 0: off")
	fs.IntVar(&cfg.FrontendPort, "frontend-port", 3000, "port of the page and the ticket API")
	fs.StringVar(&games, "game-ports", "7000,7001", "ports of the game servers, one process each (7000-8000)")
	fs.StringVar(&matchers, "matcher-ops-ports", "9102,9104", "one matcher worker per port (its /healthz, /readyz, /metrics); the workers share the shards")
	fs.IntVar(&cfg.AllocatorOpsPort, "allocator-ops-port", 9103, "allocator /healthz, /readyz, /metrics")
	fs.StringVar(&services, "services", "", "services to start, comma-separated (default: all of frontend,matcher,allocator,game)")
	fs.IntVar(&cfg.ServiceProcs, "service-procs", stack.DefaultServiceProcs(), "GOMAXPROCS of each service process (default: a quarter of the cores, at least 2; the services share this machine)")
	fs.StringVar(&extraEnv, "service-env", "", "extra KEY=VALUE settings for every service, comma-separated (e.g. RATE_LIMIT=0)")
	if err := envflag.Parse(fs, args); err != nil {
		return err
	}
	for _, p := range strings.Split(games, ",") {
		port, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || port < 7000 || port > 8000 {
			return fmt.Errorf("game port %q: want a number in 7000-8000", p)
		}
		cfg.GamePorts = append(cfg.GamePorts, port)
	}
	if services != "" {
		cfg.Services = strings.Split(services, ",")
	}
	if extraEnv != "" {
		cfg.Env = strings.Split(extraEnv, ",")
	}
	for _, p := range strings.Split(matchers, ",") {
		port, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return fmt.Errorf("matcher port %q: %w", p, err)
		}
		cfg.MatcherOpsPorts = append(cfg.MatcherOpsPorts, port)
	}
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf(`
  quickmatch is running.

    Open %[1]s in two browser tabs and press "Find a match" in each.

    API:   every request needs a player token; the development issuer (loopback only) hands them out:
           TOKEN=$(curl -s -XPOST %[1]s/dev/token -d '{"player_id":"alice"}' | sed 's/.*"token":"\([^"]*\)".*/\1/')
           curl -s -XPOST %[1]s/v1/tickets -H "Authorization: Bearer $TOKEN" -d '{"skill":1650,"region":"eu"}'
    Load:  bin/load run -url %[1]s -token-key %[2]s
           (the development issuer's key: tokens minted with it are accepted)
    NATS:  %[3]s, with users only (results.> carries every player's join token).
           The operator's credentials, new each run, are in %[4]s; the nats CLI reads them from the environment:
           set -a; . %[4]s; set +a
           bin/nats sub 'results.>'   /   bin/nats pub matchmaking.eu.gold '{"player_id":"carol","skill":1650}'

    Failover: a service that exits is started again (the exit and restart are logged).%[5]s

  Ctrl-C stops everything.

`, s.FrontendURL(), s.DevIssuerKeyFile(), s.NATSURL(), s.NATSEnvFile(), failoverHint(s.Pids()))
	<-ctx.Done()
	fmt.Println("stopping...")
	return s.Stop()
}

// failoverHint says how to see the first matcher's shards fail over, if
// there is one. Killing it is not the way: it is restarted a second later
// with the same WORKER_ID, beating again and retaking its own leases
// before the other counts it dead (events.WorkerTTL). A paused process is
// not restarted (it has not exited: proc.Process restarts on exit alone),
// so pausing it past WorkerTTL + LeaseRenew lets the other take its shards.
func failoverHint(pids map[string]int) string {
	pid, ok := pids["matcher-1"]
	if !ok || pid <= 0 {
		return ""
	}
	return fmt.Sprintf("\n           kill -9 %[1]d (matcher-1) restarts it: its shards come back to it."+
		"\n           To watch the other matcher take its shards, pause it for longer than 4 s: kill -STOP %[1]d, then kill -CONT %[1]d", pid)
}
