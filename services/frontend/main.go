// Command frontend takes match requests from players over HTTP and tells
// them where to play.
//
// Files: config.go is the configuration (every flag but the identity
// ones), auth.go the identity flags, main.go wires the parts and shuts
// them down in order.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/capacity"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/drain"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/queue"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

// about says what the frontend is: the first line of its -h
// and of its package comment (TestHelp checks that they agree).
const about = "frontend takes match requests from players over HTTP and tells them where to play."

func main() { service.Main("frontend", run) }

func run(ctx context.Context, args []string) error {
	cfg, err := parseConfig(args)
	if err != nil {
		return err
	}
	env, err := service.New(ctx, "frontend", cfg.service)
	if err != nil {
		return err
	}
	defer env.Close()
	// The API's address answers from here on: its probes, and 503 to
	// every other request until the frontend is bound (api.Starting),
	// while NATS is waited for (Connect). The bound address is logged
	// (port 0 picks one): whoever started the frontend reads it from
	// that line, and waits for /readyz.
	ln, err := ops.Listen(env.Log, ops.NameHTTP, cfg.httpAddr)
	if err != nil {
		return err
	}
	var serveOpts []ops.Option
	if cfg.h2Streams > 0 {
		serveOpts = append(serveOpts, ops.WithCleartextHTTP2(cfg.h2Streams))
		ln = ops.ReadBuffered(ln) // HTTP/2's frames read without a system call each
	}
	probes := env.OpsHandler()
	var opsLn net.Listener
	if cfg.opsAddr != "" {
		if opsLn, err = ops.Listen(env.Log, ops.NameOps, cfg.opsAddr); err != nil {
			_ = ln.Close()
			return err
		}
		probes = env.ProbesHandler()
	}
	sw := ops.NewSwitch(api.Starting(probes))
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	served := make(chan error, 1)
	go func() { served <- ops.Serve(serveCtx, ops.NewServer(sw, serveOpts...), ln, cfg.grace) }()
	opsServed := serveOps(serveCtx, env, opsLn, cfg.grace)
	defer func() { stopServing(); <-opsServed }() // it ends with the API's server

	f, err := build(ctx, env, &cfg)
	if err != nil {
		stopServing()
		return errors.Join(err, <-served)
	}
	// The tracker and the watchers outlive the HTTP server, which
	// still cancels the tickets of the demo's /ws clients it lets go.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return f.tracker.Run(gctx) })
	g.Go(func() error { return f.parts.capacity.Run(gctx) })
	g.Go(func() error { return f.parts.drains.Run(gctx) })
	g.Go(func() error { cfg.tickets.Rules.Watch(gctx, cfg.rulesReload); return nil })
	g.Go(func() error { return f.parts.queues.Run(gctx) })
	// The API, and readiness, once the tracker hears results: before, a
	// frontend whose subscription NATS had not confirmed (a cut just
	// after the bind) said it was ready, and each creation waited for the
	// tracker 2 s and failed.
	select {
	case <-f.tracker.Subscribed():
		sw.Set(f.api)
	case <-gctx.Done():
	case <-ctx.Done():
	}
	// The withdrawals tried again stop, and the creations still trying
	// their writes give up, as the server's shutdown begins: those under
	// way then end within its grace (tickets.Service.Stop).
	go func() { <-f.done; f.parts.tickets.Stop() }()
	err = serve(ctx, gctx, cfg, env, f.done, stopServing, served)
	f.parts.tickets.Stop() // if the server ended first
	stopRun()
	return errors.Join(err, g.Wait())
}

// serveOps serves /healthz, /readyz and /metrics on ln (-ops-addr; nil:
// none) until ctx ends; the channel closes when it has stopped. A
// failure is logged, not the frontend's end: its players are served on
// the API's address, and its drain must not be skipped for metrics.
func serveOps(ctx context.Context, env *service.Env, ln net.Listener, grace time.Duration) <-chan struct{} {
	done := make(chan struct{})
	if ln == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		if err := ops.Serve(ctx, ops.NewServer(env.OpsHandler()), ln, grace); err != nil {
			env.Log.Error("ops server stopped: /metrics is not served", "err", err)
		}
	}()
	return done
}

// built is the frontend once connected and bound: its API, the tracker
// that follows its players' results, the parts bound, and done, which
// closes to let waiting clients go at shutdown.
type built struct {
	api     http.Handler
	tracker *results.Tracker
	parts   boundParts
	done    chan struct{}
}

// build connects the frontend and builds its parts. It sets
// cfg.api.Queue and cfg.tickets.Rules (and Drains, bind).
func build(ctx context.Context, env *service.Env, cfg *config) (built, error) {
	var f built
	// What needs no NATS first: a key or rule set file that does not
	// read ends the process at once, not behind a healthy probe.
	if err := cfg.auth.apply(ctx, &cfg.api, env.Log); err != nil {
		return f, err
	}
	var err error
	if cfg.tickets.Rules, err = openRules(cfg.rulesFile, env.Log); err != nil {
		return f, err
	}
	if err := env.Connect(ctx); err != nil {
		return f, err
	}
	var svc *tickets.Service
	waits := results.ModeWaits(cfg.tickets.Rules, expiryMargin)
	f.tracker = results.New(env.NC, env.Subjects, env.Log, env.Registry, waits, func(ctx context.Context, id string) results.Retry { return svc.Expire(ctx, id) }) // svc is made after the tracker
	if f.parts, err = bind(ctx, env, cfg, f.tracker); err != nil {
		return f, err
	}
	svc = f.parts.tickets
	env.Registry.MustRegister(svc.Metrics()...)
	cfg.api.Queue = f.parts.queues
	f.done = make(chan struct{})
	f.api, err = api.New(cfg.api, svc, f.tracker, env.Log, &env.Ready, env.Registry, f.done)
	return f, err
}

// boundParts are what the frontend binds before it is ready.
type boundParts struct {
	capacity *capacity.Watcher
	drains   *drain.Watcher
	tickets  *tickets.Service
	queues   *queue.Watcher
}

// bind binds the frontend's buckets and reads the drains in force, before
// the frontend is ready: without the drains it would admit tickets into
// drained shards (drain.New). NATS silent meanwhile (a restart during a
// partition) is waited out, not ended (service.Retry). It sets
// cfg.tickets.Drains.
func bind(ctx context.Context, env *service.Env, cfg *config, tracker *results.Tracker) (boundParts, error) {
	var p boundParts
	err := service.Retry(ctx, env.NC, env.Log, "bind the buckets and read the drains in force", func(ctx context.Context) error {
		var err error
		if p.capacity, err = capacity.New(ctx, env.JS, env.Subjects, cfg.minFree, env.Log); err != nil {
			return err
		}
		if p.drains, err = drain.New(ctx, env.JS, env.Subjects, env.Log); err != nil {
			return err
		}
		cfg.tickets.Drains = p.drains
		if p.tickets, err = tickets.New(ctx, cfg.tickets, env.JS, env.Subjects, tracker, p.capacity, env.Log); err != nil {
			return err
		}
		p.queues, err = queue.New(ctx, env.JS, env.Subjects, env.Log)
		return err
	})
	return p, err
}

// expiryMargin is how long past its mode's max_wait a ticket this
// frontend follows waits before the frontend expires it (results.ModeWaits):
// the matcher holding it expires it at max_wait, within a sweep (a
// second), and says why; the frontend's expiry is the backstop for a
// ticket no matcher holds (its owner cut off, its shard between owners),
// and the claim makes either the only outcome. 10 s left such tickets
// late by as much in the chaos runs; 3 s is three sweeps.
const expiryMargin = 3 * time.Second

// openRules reads the rule set file (none: rules.Default()). A file that
// does not read or check stops the start: a frontend without the
// matchers' rules would take tickets they dead-letter.
func openRules(path string, log *slog.Logger) (*rules.Current, error) {
	cur, err := rules.Open(path, log)
	if err != nil {
		return nil, err
	}
	log.Info("rule set in force", "path", path, "modes", cur.Get().Modes())
	return cur, nil
}

// serve says the frontend is ready and serves the API (already
// listening: served ends with the server) until ctx (the process) or
// parts (the parts behind it) end. Shutdown: fail readiness, wait for
// load balancers to notice, let waiting clients go (closing done: a
// /ws/events client's ticket is kept for it to follow elsewhere, a /ws
// client's cancelled), then stop taking requests (stopServing) and
// finish the ones in flight.
func serve(ctx, parts context.Context, cfg config, env *service.Env, done chan<- struct{}, stopServing func(), served <-chan error) error {
	// Ready before the shutdown watcher starts, so that a signal that has
	// already come fails readiness after this and not before; not at all
	// if it came while the tracker subscribed.
	ready := ctx.Err() == nil && parts.Err() == nil
	if ready {
		env.Ready.Set(true)
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-parts.Done():
		}
		env.Ready.Set(false)
		if ready { // else no load balancer sent it anyone
			time.Sleep(cfg.drainWait)
		}
		close(done)
		stopServing()
	}()
	return <-served
}
