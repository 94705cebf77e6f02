// Command matcher pools matchmaking tickets from JetStream and forms matches.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/logging"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/natsconn"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/matcher"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "matcher:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var (
		natsCfg    natsconn.Config
		cfg        matcher.Config
		opsAddr    string
		logFormat  string
		logLevel   string
		replicas   int
		drainGrace time.Duration
	)
	fs := flag.NewFlagSet("matcher", flag.ContinueOnError)
	natsCfg.RegisterFlags(fs)
	cfg.RegisterFlags(fs)
	fs.StringVar(&opsAddr, "ops-addr", ":9102", "address of /healthz, /readyz and /metrics")
	fs.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.IntVar(&replicas, "stream-replicas", 1, "replicas of the streams this service provisions (3 on a NATS cluster)")
	fs.DurationVar(&drainGrace, "shutdown-grace", 5*time.Second, "time to finish in-flight work after SIGTERM")
	if err := envflag.Parse(fs, args); err != nil {
		return err
	}
	if err := natsCfg.Validate(); err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "matcher", logFormat, logLevel)
	if err != nil {
		return err
	}
	nc, err := natsconn.Connect(natsCfg, "matcher", log)
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := matcher.New(cfg, js, subj, log, reg)
	if err != nil {
		return err
	}
	var ready ops.Readiness
	mux := http.NewServeMux()
	ops.Register(mux, &ready, reg)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.ListenAndServe(gctx, opsAddr, mux, drainGrace) })
	g.Go(func() error {
		ready.Set(true)
		defer ready.Set(false)
		return m.Run(gctx)
	})
	err = g.Wait()
	if derr := nc.Drain(); derr != nil {
		log.Warn("nats drain", "err", derr)
	}
	return err
}
