// Command matcher pools matchmaking tickets from JetStream and forms
// matches.
package main

import (
	"context"
	"flag"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/matcher"
)

// about says what the matcher is: the first line of its -h
// and of its package comment (TestHelp checks that they agree).
const about = "matcher pools matchmaking tickets from JetStream and forms matches."

func main() { service.Main("matcher", run) }

// config is the whole service's configuration: flags, each with an
// environment fallback (envflag: the flag's name in upper snake case).
type config struct {
	service service.Options
	worker  matcher.Config
	// opsAddr serves /healthz, /readyz and /metrics.
	opsAddr string
	// grace bounds the ops server's shutdown after SIGTERM; the worker
	// hands its shards back first.
	grace time.Duration
}

// registerFlags adds every flag of the service to fs, with its default.
func (c *config) registerFlags(fs *flag.FlagSet) {
	c.service.RegisterFlags(fs)
	fs.StringVar(&c.opsAddr, "ops-addr", ":9102", "address of /healthz, /readyz and /metrics")
	c.worker.RegisterFlags(fs)
	fs.DurationVar(&c.grace, "shutdown-grace", 5*time.Second, "time for the ops server to finish after SIGTERM (the worker hands its shards back first)")
}

func run(ctx context.Context, args []string) error {
	var cfg config
	fs := envflag.NewFlagSet("matcher", about)
	cfg.registerFlags(fs)
	if err := envflag.Parse(fs, args); err != nil {
		return err
	}
	// The shards whose consumers -provision creates are the worker's.
	cfg.service.Regions, cfg.service.Tiers = cfg.worker.Regions, cfg.worker.Tiers
	// Refused before NATS is waited for, not behind a healthy probe.
	if err := cfg.worker.Validate(); err != nil {
		return err
	}
	env, err := service.New(ctx, "matcher", cfg.service)
	if err != nil {
		return err
	}
	defer env.Close()
	// Probes answered from here on, while NATS is waited for (Connect).
	ln, err := ops.Listen(env.Log, ops.NameOps, cfg.opsAddr)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.Serve(gctx, ops.NewServer(env.OpsHandler()), ln, cfg.grace) })
	g.Go(func() error {
		if err := env.Connect(gctx); err != nil {
			return err
		}
		m, err := matcher.New(cfg.worker, env.JS, env.Subjects, env.Log, env.Registry)
		if err != nil {
			return err
		}
		// Ready once bound: a worker still waiting for NATS takes no
		// shard, and a rolling update must not count it as one that does.
		if err := m.Bind(gctx); err != nil {
			return err
		}
		env.Ready.Set(true)
		defer env.Ready.Set(false)
		return m.Run(gctx)
	})
	return g.Wait()
}
