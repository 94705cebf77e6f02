// Command frontend takes match requests from players over HTTP and tells
// them where to play.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "frontend:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var (
		opts      service.Options
		httpAddr  string
		grace     time.Duration
		drainWait time.Duration
	)
	regions := append(events.Regions(nil), events.DefaultRegions...)
	tiers := append(events.Tiers(nil), events.DefaultTiers...)
	fs := flag.NewFlagSet("frontend", flag.ContinueOnError)
	opts.RegisterFlags(fs)
	fs.Var(&regions, "regions", "regions served, comma-separated")
	fs.Var(&tiers, "tiers", "skill tiers as name:min_skill, increasing")
	fs.StringVar(&httpAddr, "http-addr", ":3000", "address of the API, the page and the ops endpoints")
	fs.DurationVar(&drainWait, "readiness-drain", 0, "after SIGTERM, how long /readyz fails before the server stops (a probe period in Kubernetes)")
	fs.DurationVar(&grace, "shutdown-grace", 10*time.Second, "time for in-flight requests after SIGTERM")
	if err := envflag.Parse(fs, args); err != nil {
		return err
	}
	env, err := service.Start(ctx, "frontend", opts)
	if err != nil {
		return err
	}
	defer env.Close()
	svc, err := tickets.New(ctx, env.JS, env.Subjects, regions, tiers)
	if err != nil {
		return err
	}
	h, err := api.New(svc, env.Log, &env.Ready, env.Registry)
	if err != nil {
		return err
	}

	// Shutdown: fail readiness first, wait for load balancers to notice,
	// then stop taking requests and finish the ones in flight.
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	go func() {
		<-ctx.Done()
		env.Ready.Set(false)
		time.Sleep(drainWait)
		stopServing()
	}()
	env.Ready.Set(true)
	env.Log.Info("frontend listening", "addr", httpAddr)
	return ops.ListenAndServe(serveCtx, httpAddr, h, grace)
}
