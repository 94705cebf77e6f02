package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/kube"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/local"
)

// backend is where game servers come from: it allocates them, reports
// their capacity and shows their rooms' backfill requests, and run keeps
// its view of them fresh until ctx ends.
type backend interface {
	allocator.Backend
	allocator.CapacitySource
	allocator.BackfillSource
	register(reg prometheus.Registerer)
	run(ctx context.Context) error
}

// backendConfig chooses the backend (-backend) and holds the flags of
// each kind.
type backendConfig struct {
	kind string
	// local: the game servers, as local.Parse reads them.
	gameServers string
	// kube: the allocation mode, and the clusters (a file, or this
	// cluster's namespace, fleet and region).
	kube                           kube.Config
	clustersFile, namespace, fleet string
	region                         string
}

func (c *backendConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.kind, "backend", "local", "where game servers come from: local (a fixed list) or kube (Agones GameServerAllocations)")
	c.kube.RegisterFlags(fs)
	fs.StringVar(&c.clustersFile, "kube-clusters-file", "", "kube backend: JSON list of clusters [{name, kubeconfig, context, namespace, fleet, region, priority, weight, modes}] (modes: the modes the fleet hosts, absent or empty: every mode); empty: this cluster (in-cluster), every mode")
	fs.StringVar(&c.namespace, "kube-namespace", "default", "kube backend, in-cluster: namespace of the game servers")
	fs.StringVar(&c.fleet, "kube-fleet", "rps", "kube backend, in-cluster: fleet of the game servers")
	fs.StringVar(&c.region, "kube-region", "eu", "kube backend, in-cluster: region the game servers serve")
	fs.StringVar(&c.gameServers, "game-servers", "127.0.0.1:7000,127.0.0.1:7001", "local backend: game servers as [name=]host:port[@status-host:port], comma-separated; players are sent to host:port, /status is read from status-host:port when given")
}

// build returns the chosen backend; the local one polls its servers every
// pollEvery, the kube one watches its GameServers.
func (c *backendConfig) build(pollEvery time.Duration) (backend, error) {
	switch c.kind {
	case "local":
		servers, err := local.Parse(c.gameServers)
		if err != nil {
			return nil, err
		}
		return polled{local.New(servers), pollEvery}, nil
	case "kube":
		clusters, err := kube.LoadClusters(c.clustersFile, c.namespace, c.fleet, c.region)
		if err != nil {
			return nil, err
		}
		b, err := kube.New(c.kube, clusters, slog.Default())
		if err != nil {
			return nil, err
		}
		return watched{b}, nil
	default:
		return nil, fmt.Errorf("backend %q: want local or kube", c.kind)
	}
}

// polled is the local backend, which reads each server's /status.
type polled struct {
	*local.Backend
	every time.Duration
}

func (polled) register(prometheus.Registerer) {} // no metrics of its own

func (p polled) run(ctx context.Context) error { return p.Run(ctx, p.every) }

// watched is the kube backend, which watches its clusters' GameServers.
type watched struct{ *kube.Backend }

func (w watched) register(reg prometheus.Registerer) { w.Register(reg) }

func (w watched) run(ctx context.Context) error { return w.Watch(ctx) }
