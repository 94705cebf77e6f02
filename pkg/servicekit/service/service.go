// Package service starts what every NATS-backed quickmatch service needs
// before it does its own work: the logger, the NATS connection, JetStream,
// the provisioned topology, a metrics registry and a readiness flag. Each
// main calls New, starts answering its probes, then Connect, and Close
// at the end; nothing else is shared.
//
// Services do not create the topology (streams, consumers, buckets): their
// NATS users may not (deploy/nats/nats.conf), so that no service can edit
// or delete what the others depend on. Provisioning is a step of its own,
// run once per install or upgrade with a user that may: the matcher binary
// with -provision (PROVISION=true; the matcher's flags say the shards),
// which provisions and exits. Every service binary takes the flag, after
// its own required flags. A service started before that step waits,
// retrying, until the topology exists.
//
// Start-up does not give up on what time fixes (retry.go): a NATS that
// does not answer yet and a failing JetStream request are retried with
// capped exponential backoff until the context ends, each attempt logged.
// Errors of the configuration (refused credentials, missing permissions,
// unreadable files, certificates that do not verify) end it at once,
// marked ErrPermanent.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/logging"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/natsconn"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
)

// Options every NATS-backed service shares, from flags or environment.
type Options struct {
	NATS      natsconn.Config
	LogFormat string
	LogLevel  string
	// Replicas of the streams the provisioning step makes: 1 on one server, 3 on a cluster.
	Replicas int
	// Regions and Tiers make the shards whose consumers -provision
	// creates; nil means the defaults. Mains that take them as flags
	// set them here.
	Regions events.Regions
	Tiers   events.Tiers
	// PprofAddr serves Go's profiles there when set (see ops.ServeProfiling).
	PprofAddr string
	// Provision makes New provision the topology (create what is missing,
	// update what differs) and end the process with status 0 instead of
	// running the service: the provisioning step of an install or upgrade,
	// run with a NATS user allowed to manage streams (the provisioner of
	// deploy/nats/nats.conf). Default false: the service only binds.
	Provision bool
}

// RegisterFlags adds the shared flags to fs. Each service adds its own
// listen address, since the frontend serves its ops endpoints on its API.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	o.NATS.RegisterFlags(fs)
	fs.StringVar(&o.LogFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&o.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.IntVar(&o.Replicas, "stream-replicas", 1, "replicas of the streams this service provisions (3 on a NATS cluster)")
	fs.StringVar(&o.PprofAddr, "pprof-addr", "", "serve Go's profiles (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; empty: off")
	tracing.Document(fs)
	fs.BoolVar(&o.Provision, "provision", false, "provision the NATS topology (streams, consumers, buckets) and exit, instead of running; needs a NATS user allowed to (provisioner in deploy/nats/nats.conf)")
}

// ProvisionerName is the NATS client name of the provisioning step, and so
// its inbox prefix (_INBOX_provisioner, which only the provisioner user
// may read), whichever service binary runs it.
const ProvisionerName = "provisioner"

// exit ends the process after the provisioning step; tests replace it.
var exit = os.Exit

// topology is what o describes.
func (o Options) topology() events.Topology {
	return events.Topology{Subjects: events.Subjects{Prefix: o.NATS.SubjectPrefix}, Replicas: o.Replicas, Regions: o.Regions, Tiers: o.Tiers}
}

// Env is a service's shared equipment: New builds it, Connect adds
// NATS (NC, JS).
type Env struct {
	Log      *slog.Logger
	NC       *nats.Conn
	JS       jetstream.JetStream
	Subjects events.Subjects
	Registry *prometheus.Registry
	// Ready is false until the service says it takes work, and should be
	// set false first thing on shutdown.
	Ready ops.Readiness
	// stopTracing flushes the spans still buffered (tracing.Setup).
	stopTracing func(context.Context) error
	// name and opts are New's, for Connect.
	name string
	opts Options
}

// New builds what a service has before NATS: the logger, the metrics
// registry, the readiness flag (not ready) and, with o.PprofAddr, the
// profiling endpoint, so that its main can answer its probes while
// Connect waits (see Connect). With o.Provision it is the provisioning
// step instead: it provisions the topology and ends the process.
func New(ctx context.Context, name string, o Options) (*Env, error) {
	if err := errors.Join(o.NATS.Validate(), events.ValidatePrefix(o.NATS.SubjectPrefix)); err != nil {
		return nil, err
	}
	log, err := logging.New(os.Stderr, name, o.LogFormat, o.LogLevel)
	if err != nil {
		return nil, err
	}
	setMemoryLimit(log)
	if o.Provision {
		if err := Provision(ctx, o, log); err != nil {
			return nil, err
		}
		exit(0)
	}
	if o.PprofAddr != "" { // profiles of the wait for NATS too
		go func() {
			if err := ops.ServeProfiling(ctx, log, o.PprofAddr); err != nil {
				log.Warn("profiling endpoint", "err", err)
			}
		}()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Env{Log: log, Subjects: events.Subjects{Prefix: o.NATS.SubjectPrefix}, Registry: reg, name: name, opts: o}, nil
}

// Connect connects to NATS and waits until the topology exists (see
// WaitForTopology), retrying until ctx ends or an error no waiting fixes
// (retry.go); it sets NC and JS.
//
// Its main serves /healthz meanwhile (New, then Connect): a wait for
// NATS is no reason for Kubernetes to restart the process (its startup
// and liveness probes read /healthz), since a restart only waits again,
// and the crash loop's backoff then outlasts the outage. /readyz says
// ready only once the service is bound.
func (e *Env) Connect(ctx context.Context) error {
	stopTracing, err := tracing.Setup(ctx, e.name, e.Log)
	if err != nil {
		return err
	}
	nc, js, err := connectJS(ctx, e.opts, e.name, e.Log)
	if err != nil {
		_ = stopTracing(context.WithoutCancel(ctx)) // nothing was traced yet
		return err
	}
	e.NC, e.JS, e.stopTracing = nc, js, stopTracing
	return nil
}

// publishAsyncTimeout ends an async publish's wait for its ack: well
// past any commit's own deadline, so only an ack that was lost meets it.
const publishAsyncTimeout = 30 * time.Second

// connectJS connects as name and waits until the topology exists.
func connectJS(ctx context.Context, o Options, name string, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := connect(ctx, o.NATS, name, log)
	if err != nil {
		return nil, nil, err
	}
	// An async publish (a matcher's batched commit, events.PublishAll)
	// whose ack is lost while the connection stays up would otherwise
	// stay pending in the client until a reconnect.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(publishAsyncTimeout))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := WaitForTopology(ctx, js, o.topology(), log); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// Provision connects as the provisioning step (client name
// ProvisionerName) and creates or updates the topology o describes
// (events.Provision: idempotent, so every install and upgrade runs it).
// It retries, with backoff, until NATS answers and provisioning succeeds
// or ctx ends; errors of the configuration (see permanent) end it at once.
func Provision(ctx context.Context, o Options, log *slog.Logger) error {
	if err := errors.Join(o.NATS.Validate(), events.ValidatePrefix(o.NATS.SubjectPrefix)); err != nil {
		return err
	}
	nc, err := connect(ctx, o.NATS, ProvisionerName, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	t := o.topology()
	start := time.Now()
	what := fmt.Sprintf("provision (as NATS user %q; it must be allowed to manage streams, e.g. provisioner)", o.NATS.User)
	err = retry(ctx, nc, log, what, "provisioning the NATS topology failed; retrying", func(ctx context.Context) error {
		return events.Provision(ctx, js, t)
	})
	if err != nil {
		return err
	}
	log.Info("topology provisioned", "streams", len(t.Streams()), "consumers", len(t.Consumers()), "buckets", len(t.Buckets()),
		"replicas", max(t.Replicas, 1), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// ErrTopologyMissing says a stream, consumer or bucket of the topology
// does not exist (yet): the provisioning step has not run.
var ErrTopologyMissing = errors.New("not provisioned")

// WaitForTopology returns once every stream and bucket of t exists, and
// every consumer but the shards' (a matcher worker binds to its shards'
// consumers as it takes them, retrying; other services do not know the
// matchers' tiers). It creates nothing: until the provisioning step has
// run it checks again, with backoff, saying what is missing, until ctx
// ends.
func WaitForTopology(ctx context.Context, js jetstream.JetStream, t events.Topology, log *slog.Logger) error {
	return retry(ctx, js.Conn(), log, "wait for the topology",
		"waiting for the NATS topology; run the provisioning step (matcher -provision, as the NATS user provisioner)",
		func(ctx context.Context) error { return missing(ctx, js, t) })
}

// missing reports the first part of t that does not exist, wrapping
// ErrTopologyMissing, or the error that kept it from looking.
func missing(ctx context.Context, js jetstream.JetStream, t events.Topology) error {
	for _, st := range t.Streams() {
		if _, err := js.Stream(ctx, st.Name); errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s: %w", st.Name, ErrTopologyMissing)
		} else if err != nil {
			return fmt.Errorf("stream %s: %w", st.Name, err)
		}
	}
	shards := map[string]bool{}
	for _, sh := range t.Shards() {
		shards[events.ShardConsumer(sh.Region, sh.Tier)] = true
		shards[events.OfferConsumer(sh.Region, sh.Tier)] = true
		shards[events.BackfillConsumer(sh.Region, sh.Tier)] = true
	}
	for _, c := range t.Consumers() {
		if shards[c.Config.Durable] {
			continue
		}
		_, err := c.Info(ctx, js)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("consumer %s on %s: %w", c.Config.Durable, c.Stream, ErrTopologyMissing)
		} else if errors.Is(err, jetstream.ErrNotPullConsumer) || errors.Is(err, jetstream.ErrNotPushConsumer) {
			// An older topology's (the allocators' was a push consumer):
			// the provisioning step makes it again as declared.
			return fmt.Errorf("consumer %s on %s is of the other kind: %w", c.Config.Durable, c.Stream, ErrTopologyMissing)
		} else if err != nil {
			return fmt.Errorf("consumer %s on %s: %w", c.Config.Durable, c.Stream, err)
		}
	}
	for _, b := range t.Buckets() {
		if _, err := js.KeyValue(ctx, b.Bucket); errors.Is(err, jetstream.ErrBucketNotFound) {
			return fmt.Errorf("bucket %s: %w", b.Bucket, ErrTopologyMissing)
		} else if err != nil {
			return fmt.Errorf("bucket %s: %w", b.Bucket, err)
		}
	}
	return nil
}

// OpsHandler serves /healthz, /readyz and /metrics of this service; a
// service may add its own routes to the mux.
func (e *Env) OpsHandler() *http.ServeMux {
	mux := http.NewServeMux()
	ops.Register(mux, &e.Ready, e.Registry)
	return mux
}

// ProbesHandler serves /healthz and /readyz of this service alone: a
// public port's, whose /metrics is served elsewhere.
func (e *Env) ProbesHandler() *http.ServeMux {
	mux := http.NewServeMux()
	ops.RegisterProbes(mux, &e.Ready)
	return mux
}

// drainWait bounds Close's wait for the drain: NATS away, it would wait
// nats.go's 30 s, past a pod's grace.
const drainWait = 2 * time.Second

// Close drains the NATS connection: the messages its subscriptions
// were given are handled, and pending publishes and acks flushed, within
// drainWait; then the spans still buffered are exported (within
// tracing.FlushBound).
func (e *Env) Close() {
	if e.NC == nil { // never connected
		return
	}
	closed := e.NC.StatusChanged(nats.CLOSED)
	defer e.NC.RemoveStatusListener(closed)
	err := e.NC.Drain()
	switch {
	case err != nil && !errors.Is(err, nats.ErrConnectionClosed):
		e.Log.Warn("nats drain", "err", err)
	case err == nil && !e.NC.IsClosed():
		// Drain returns at once and drains in the background: a process
		// that returned then exited with a handler's message half
		// handled and its publishes in the buffer.
		select {
		case <-closed:
		case <-time.After(drainWait):
			e.Log.Warn("nats drain not done; closing", "waited", drainWait)
			e.NC.Close()
		}
	}
	if e.stopTracing == nil {
		return
	}
	if err := e.stopTracing(context.Background()); err != nil {
		e.Log.Warn("tracing flush", "err", err)
	}
}
