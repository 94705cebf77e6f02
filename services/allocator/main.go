// Command allocator finds a game server for every formed match and tells
// each player where to go.
//
// config.go holds its configuration (every flag, with its default, once);
// backend.go the two sources of game servers, local and kube.
package main

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/autoscale"
)

// about says what the allocator is: the first line of its -h
// and of its package comment (TestHelp checks that they agree).
const about = "allocator finds a game server for every formed match and tells each player where to go."

func main() { service.Main("allocator", run) }

func run(ctx context.Context, args []string) error {
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	// The backend is built before NATS is dialled: a bad list of servers
	// or clusters file is reported at once.
	backend, err := cfg.backend.build(cfg.pollEvery)
	if err != nil {
		return err
	}
	env, err := service.Start(ctx, "allocator", cfg.service)
	if err != nil {
		return err
	}
	defer env.Close()
	backend.register(env.Registry)
	a, err := allocator.New(cfg.alloc, env.NC, env.JS, env.Subjects, backend, env.Log, env.Registry)
	if err != nil {
		return err
	}
	// The ops server also answers Agones' FleetAutoscaler webhook.
	mux := env.OpsHandler()
	mux.Handle("POST /autoscale", autoscale.New(cfg.scale, autoscale.StreamDemand{JS: env.JS, Subj: env.Subjects}, env.Log))
	// Bound before anything else may block: whoever started this process
	// on port 0 reads the address from the line Listen logs.
	ln, err := ops.Listen(env.Log, ops.NameOps, cfg.opsAddr)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.Serve(gctx, ops.NewServer(mux), ln, cfg.alloc.CloseTimeout) })
	g.Go(func() error { return backend.run(gctx) })
	g.Go(func() error {
		return allocator.ReportCapacity(gctx, env.JS, env.Subjects, cfg.service.Regions, backend, cfg.pollEvery, env.Log)
	})
	g.Go(func() error {
		return allocator.RequestBackfills(gctx, env.JS, env.Subjects, backend, cfg.backfill, env.Log, env.Registry)
	})
	g.Go(func() error {
		// Ready once bound: an allocator still waiting for NATS
		// allocates nothing.
		if err := a.Bind(gctx); err != nil {
			return err
		}
		env.Ready.Set(true)
		defer env.Ready.Set(false)
		return a.Run(gctx)
	})
	return g.Wait()
}
