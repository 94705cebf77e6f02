// Command allocator finds a game server for every formed match and tells
// each player where to go.
package main

import (
	"context"
	"encoding/hex"
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
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/local"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "allocator:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var (
		natsCfg     natsconn.Config
		cfg         allocator.Config
		backend     string
		gameServers string
		joinSecret  string
		opsAddr     string
		logFormat   string
		logLevel    string
		replicas    int
	)
	fs := flag.NewFlagSet("allocator", flag.ContinueOnError)
	natsCfg.RegisterFlags(fs)
	fs.StringVar(&backend, "backend", "local", "where game servers come from: local (a fixed list)")
	fs.StringVar(&gameServers, "game-servers", "127.0.0.1:7000,127.0.0.1:7001", "local backend: game servers as [name=]host:port, comma-separated")
	fs.StringVar(&joinSecret, "join-secret", "", "hex secret that signs join tokens; the game servers hold the same (required)")
	fs.DurationVar(&cfg.TokenTTL, "join-token-ttl", 10*time.Minute, "how long a join token admits its player")
	fs.IntVar(&cfg.Concurrency, "concurrency", 8, "matches allocated at once")
	fs.DurationVar(&cfg.RetryDeadline, "retry-deadline", 10*time.Second, "how long one match is retried before its players are told it failed")
	fs.DurationVar(&cfg.CloseTimeout, "shutdown-grace", 10*time.Second, "time for in-flight matches after SIGTERM")
	fs.StringVar(&opsAddr, "ops-addr", ":9103", "address of /healthz, /readyz and /metrics")
	fs.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.IntVar(&replicas, "stream-replicas", 1, "replicas of the streams this service provisions (3 on a NATS cluster)")
	if err := envflag.Parse(fs, args); err != nil {
		return err
	}
	if err := natsCfg.Validate(); err != nil {
		return err
	}
	secret, err := hex.DecodeString(joinSecret)
	if err != nil {
		return fmt.Errorf("join-secret must be hex: %w", err)
	}
	cfg.JoinSecret = secret
	if backend != "local" {
		return fmt.Errorf("backend %q: only local exists yet", backend)
	}
	servers, err := local.Parse(gameServers)
	if err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "allocator", logFormat, logLevel)
	if err != nil {
		return err
	}
	nc, err := natsconn.Connect(natsCfg, "allocator", log)
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
	a, err := allocator.New(cfg, nc, js, subj, local.New(servers), log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var ready ops.Readiness
	mux := http.NewServeMux()
	ops.Register(mux, &ready, reg)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.ListenAndServe(gctx, opsAddr, mux, cfg.CloseTimeout) })
	g.Go(func() error {
		ready.Set(true)
		defer ready.Set(false)
		return a.Run(gctx)
	})
	err = g.Wait()
	if derr := nc.Drain(); derr != nil {
		log.Warn("nats drain", "err", derr)
	}
	return err
}
