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

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/logging"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/natsconn"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
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
		natsCfg   natsconn.Config
		httpAddr  string
		logFormat string
		logLevel  string
		replicas  int
		grace     time.Duration
		drainWait time.Duration
	)
	regions := append(events.Regions(nil), events.DefaultRegions...)
	tiers := append(events.Tiers(nil), events.DefaultTiers...)
	fs := flag.NewFlagSet("frontend", flag.ContinueOnError)
	natsCfg.RegisterFlags(fs)
	fs.Var(&regions, "regions", "regions served, comma-separated")
	fs.Var(&tiers, "tiers", "skill tiers as name:min_skill, increasing")
	fs.StringVar(&httpAddr, "http-addr", ":3000", "address of the API, the page and the ops endpoints")
	fs.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.IntVar(&replicas, "stream-replicas", 1, "replicas of the streams this service provisions (3 on a NATS cluster)")
	fs.DurationVar(&drainWait, "readiness-drain", 0, "after SIGTERM, how long /readyz fails before the server stops (a probe period in Kubernetes)")
	fs.DurationVar(&grace, "shutdown-grace", 10*time.Second, "time for in-flight requests after SIGTERM")
	if err := envflag.Parse(fs, args); err != nil {
		return err
	}
	if err := natsCfg.Validate(); err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "frontend", logFormat, logLevel)
	if err != nil {
		return err
	}
	nc, err := natsconn.Connect(natsCfg, "frontend", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	subj := events.Subjects{Prefix: natsCfg.SubjectPrefix}
	if err := events.Provision(ctx, js, events.Topology{Subjects: subj, Replicas: replicas}); err != nil {
		return err
	}
	svc, err := tickets.New(ctx, js, subj, regions, tiers)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var ready ops.Readiness
	h, err := api.New(svc, log, &ready, reg)
	if err != nil {
		return err
	}

	// Shutdown: fail readiness first, wait for load balancers to notice,
	// then stop taking requests and finish the ones in flight.
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	go func() {
		<-ctx.Done()
		ready.Set(false)
		time.Sleep(drainWait)
		stopServing()
	}()
	ready.Set(true)
	log.Info("frontend listening", "addr", httpAddr)
	err = ops.ListenAndServe(serveCtx, httpAddr, h, grace)
	if derr := nc.Drain(); derr != nil {
		log.Warn("nats drain", "err", derr)
	}
	return err
}
