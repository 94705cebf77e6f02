// Command allocator finds a game server for every formed match and tells
// each player where to go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/autoscale"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/kube"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/local"
)

func main() {
	ops.MaybeProbe(os.Args[1:]) // "probe URL": the container healthcheck
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "allocator:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var (
		opts        service.Options
		opsAddr     string
		cfg         allocator.Config
		backend     string
		gameServers string
		joinKeyFile string
		pollEvery   time.Duration
		scaleCfg    autoscale.Config
	)
	regions := append(events.Regions(nil), events.DefaultRegions...)
	fs := flag.NewFlagSet("allocator", flag.ContinueOnError)
	opts.RegisterFlags(fs)
	fs.StringVar(&opsAddr, "ops-addr", ":9103", "address of /healthz, /readyz and /metrics")
	fs.StringVar(&backend, "backend", "local", "where game servers come from: local (a fixed list) or kube (Agones GameServerAllocations)")
	var kubeCfg kube.Config
	var clustersFile, kubeNamespace, kubeFleet string
	fs.StringVar((*string)(&kubeCfg.Mode), "allocation-mode", string(kube.HighDensity), "kube backend: high-density, label-locking or one-per-server")
	fs.StringVar(&clustersFile, "kube-clusters-file", "", "kube backend: JSON list of clusters [{name, kubeconfig, context, namespace, fleet, priority, weight}]; empty: this cluster (in-cluster)")
	fs.StringVar(&kubeNamespace, "kube-namespace", "default", "kube backend, in-cluster: namespace of the game servers")
	fs.StringVar(&kubeFleet, "kube-fleet", "rps", "kube backend, in-cluster: fleet of the game servers")
	var kubeRegion string
	fs.StringVar(&kubeRegion, "kube-region", "eu", "kube backend, in-cluster: region the game servers serve")
	fs.StringVar(&gameServers, "game-servers", "127.0.0.1:7000,127.0.0.1:7001", "local backend: game servers as [name=]host:port[@status-host:port], comma-separated; players are sent to host:port, /status is read from status-host:port when given")
	fs.Var(&regions, "regions", "regions whose capacity this allocator reports, comma-separated")
	fs.DurationVar(&pollEvery, "capacity-interval", time.Second, "how often game-server capacity is read and reported")
	fs.IntVar(&scaleCfg.Buffer, "autoscale-buffer", 1, "FleetAutoscaler webhook: Ready servers kept beyond the demand")
	fs.IntVar(&scaleCfg.PlayersPerRoom, "autoscale-players-per-room", 2, "FleetAutoscaler webhook: players of one match")
	fs.IntVar(&scaleCfg.RoomsPerServer, "autoscale-rooms-per-server", 10, "FleetAutoscaler webhook: rooms per server when the fleet has no rooms counter")
	fs.StringVar(&joinKeyFile, "join-key-file", "", "PEM file of the Ed25519 private key that signs join tokens (openssl genpkey -algorithm ed25519); game servers verify with its public key (required)")
	fs.DurationVar(&cfg.TokenTTL, "join-token-ttl", 10*time.Minute, "how long a join token admits its player")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "matches allocated at once (each waits on a few JetStream round trips and the backend)")
	fs.DurationVar(&cfg.RetryDeadline, "retry-deadline", 10*time.Second, "how long one match is retried before its players are told it failed")
	var onNoCapacity string
	fs.StringVar(&onNoCapacity, "on-no-capacity", "fail", "when no game server is found in time: fail (tell the players) or requeue (queue their tickets again, keeping their wait)")
	fs.DurationVar(&cfg.CloseTimeout, "shutdown-grace", 10*time.Second, "time for in-flight matches after SIGTERM")
	if err := envflag.Parse(fs, args); err != nil {
		return err
	}
	switch onNoCapacity {
	case "fail":
	case "requeue":
		cfg.Requeue = true
	default:
		return fmt.Errorf("on-no-capacity %q: want fail or requeue", onNoCapacity)
	}
	if joinKeyFile == "" {
		return errors.New("-join-key-file is required: the private key that signs join tokens")
	}
	joinKey, err := jointoken.LoadPrivateKey(joinKeyFile)
	if err != nil {
		return err
	}
	cfg.JoinKey = joinKey
	var backendImpl allocator.Backend
	var localBackend *local.Backend
	var kubeBackend *kube.Backend
	switch backend {
	case "local":
		servers, err := local.Parse(gameServers)
		if err != nil {
			return err
		}
		localBackend = local.New(servers)
		backendImpl = localBackend
	case "kube":
		clusters, err := kube.LoadClusters(clustersFile, kubeNamespace, kubeFleet, kubeRegion)
		if err != nil {
			return err
		}
		if kubeBackend, err = kube.New(kubeCfg, clusters, slog.Default()); err != nil {
			return err
		}
		backendImpl = kubeBackend
	default:
		return fmt.Errorf("backend %q: want local or kube", backend)
	}
	opts.Regions = regions
	env, err := service.Start(ctx, "allocator", opts)
	if err != nil {
		return err
	}
	defer env.Close()
	if kubeBackend != nil {
		kubeBackend.Register(env.Registry)
	}
	a, err := allocator.New(cfg, env.NC, env.JS, env.Subjects, backendImpl, env.Log, env.Registry)
	if err != nil {
		return err
	}
	// The ops server also answers Agones' FleetAutoscaler webhook.
	mux := env.OpsHandler()
	mux.Handle("POST /autoscale", autoscale.New(scaleCfg, autoscale.StreamDemand{JS: env.JS, Subj: env.Subjects}, env.Log))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.ListenAndServe(gctx, opsAddr, mux, cfg.CloseTimeout) })
	var capacity allocator.CapacitySource
	if localBackend != nil {
		capacity = localBackend
		g.Go(func() error { return localBackend.Run(gctx, pollEvery) })
	} else {
		capacity = kubeBackend
		g.Go(func() error { return kubeBackend.Watch(gctx) })
	}
	g.Go(func() error {
		return allocator.ReportCapacity(gctx, env.JS, env.Subjects, regions, capacity, pollEvery, env.Log)
	})
	g.Go(func() error {
		env.Ready.Set(true)
		defer env.Ready.Set(false)
		return a.Run(gctx)
	})
	return g.Wait()
}
