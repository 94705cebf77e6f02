// Package service starts what every NATS-backed quickmatch service needs
// before it does its own work: the logger, the NATS connection, JetStream,
// the provisioned topology, a metrics registry and a readiness flag. Each
// main calls Start once and Close at the end; nothing else is shared.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/logging"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/natsconn"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
)

// Options every NATS-backed service shares, from flags or environment.
type Options struct {
	NATS      natsconn.Config
	LogFormat string
	LogLevel  string
	// Replicas of the streams Start provisions: 1 on one server, 3 on a cluster.
	Replicas int
	// Regions and Tiers make the shards whose pool consumers Start
	// provisions; nil means the defaults. Mains that take them as flags
	// set them here.
	Regions events.Regions
	Tiers   events.Tiers
	// PprofAddr serves Go's profiles there when set (see ops.ServeProfiling).
	PprofAddr string
}

// RegisterFlags adds the shared flags to fs. Each service adds its own
// listen address, since the frontend serves its ops endpoints on its API.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	o.NATS.RegisterFlags(fs)
	fs.StringVar(&o.LogFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&o.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.IntVar(&o.Replicas, "stream-replicas", 1, "replicas of the streams this service provisions (3 on a NATS cluster)")
	fs.StringVar(&o.PprofAddr, "pprof-addr", "", "serve Go's profiles (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; empty: off")
}

// Env is a started service's shared equipment.
type Env struct {
	Log      *slog.Logger
	NC       *nats.Conn
	JS       jetstream.JetStream
	Subjects events.Subjects
	Registry *prometheus.Registry
	// Ready is false until the service says it takes work, and should be
	// set false first thing on shutdown.
	Ready ops.Readiness
}

// Start builds the logger, connects, and provisions the topology.
func Start(ctx context.Context, name string, o Options) (*Env, error) {
	if err := errors.Join(o.NATS.Validate(), events.ValidatePrefix(o.NATS.SubjectPrefix)); err != nil {
		return nil, err
	}
	log, err := logging.New(os.Stderr, name, o.LogFormat, o.LogLevel)
	if err != nil {
		return nil, err
	}
	nc, err := natsconn.Connect(o.NATS, name, log)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	subj := events.Subjects{Prefix: o.NATS.SubjectPrefix}
	if err := events.Provision(ctx, js, events.Topology{Subjects: subj, Replicas: o.Replicas, Regions: o.Regions, Tiers: o.Tiers}); err != nil {
		nc.Close()
		return nil, err
	}
	if o.PprofAddr != "" {
		go func() {
			if err := ops.ServeProfiling(ctx, o.PprofAddr); err != nil {
				log.Warn("profiling endpoint", "err", err)
			}
		}()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Env{Log: log, NC: nc, JS: js, Subjects: subj, Registry: reg}, nil
}

// OpsHandler serves /healthz, /readyz and /metrics of this service; a
// service may add its own routes to the mux.
func (e *Env) OpsHandler() *http.ServeMux {
	mux := http.NewServeMux()
	ops.Register(mux, &e.Ready, e.Registry)
	return mux
}

// Close drains the NATS connection: pending publishes and acks are flushed.
func (e *Env) Close() {
	if err := e.NC.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		e.Log.Warn("nats drain", "err", err)
	}
}
