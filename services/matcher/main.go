// Command matcher pools matchmaking tickets from JetStream and forms matches.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/matcher"
)

func main() {
	ops.MaybeProbe(os.Args[1:]) // "probe URL": the container healthcheck
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "matcher:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var (
		opts    service.Options
		opsAddr string
		cfg     matcher.Config
		grace   time.Duration
	)
	fs := flag.NewFlagSet("matcher", flag.ContinueOnError)
	opts.RegisterFlags(fs)
	fs.StringVar(&opsAddr, "ops-addr", ":9102", "address of /healthz, /readyz and /metrics")
	cfg.RegisterFlags(fs)
	fs.DurationVar(&grace, "shutdown-grace", 5*time.Second, "time for the ops server to finish after SIGTERM (the worker hands its shards back first)")
	if err := envflag.Parse(fs, args); err != nil {
		return err
	}
	opts.Regions, opts.Tiers = cfg.Regions, cfg.Tiers
	env, err := service.Start(ctx, "matcher", opts)
	if err != nil {
		return err
	}
	defer env.Close()
	m, err := matcher.New(cfg, env.JS, env.Subjects, env.Log, env.Registry)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.ListenAndServe(gctx, opsAddr, env.OpsHandler(), grace) })
	g.Go(func() error {
		env.Ready.Set(true)
		defer env.Ready.Set(false)
		return m.Run(gctx)
	})
	return g.Wait()
}
