// Command allocator finds a game server for every formed match and tells
// each player where to go.
//
// config.go holds its configuration (every flag, with its default, once);
// backend.go the two sources of game servers, local and kube.
package main

import (
	"context"
	"net/http"
	"time"

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
	env, err := service.New(ctx, "allocator", cfg.service)
	if err != nil {
		return err
	}
	defer env.Close()
	backend.register(env.Registry)
	// The ops server answers its probes from here on, while NATS is
	// waited for (Connect), and Agones' FleetAutoscaler webhook: 503
	// until connected (Agones keeps the fleet as it is on an error). Bound
	// before anything else may block: whoever started this process on
	// port 0 reads the address from the line Listen logs.
	mux := env.OpsHandler()
	scale := ops.NewSwitch(http.HandlerFunc(notConnected))
	mux.Handle("POST /autoscale", scale)
	ln, err := ops.Listen(env.Log, ops.NameOps, cfg.opsAddr)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.Serve(gctx, ops.NewServer(mux), ln, cfg.alloc.CloseTimeout) })
	g.Go(func() error { return backend.run(gctx) })
	g.Go(func() error {
		if err := env.Connect(gctx); err != nil {
			return err
		}
		a, err := allocator.New(cfg.alloc, env.NC, env.JS, env.Subjects, backend, env.Log, env.Registry)
		if err != nil {
			return err
		}
		scale.Set(autoscale.New(cfg.scale, autoscale.StreamDemand{JS: env.JS, Subj: env.Subjects}, env.Log))
		g.Go(func() error {
			return allocator.ReportCapacity(gctx, env.JS, env.Subjects, cfg.service.Regions, backend, cfg.pollEvery, env.Log)
		})
		g.Go(func() error {
			return allocator.RequestBackfills(gctx, env.JS, env.Subjects, backend, cfg.alloc.Backfill, env.Log, env.Registry)
		})
		if err := a.Bind(gctx); err != nil {
			return err
		}
		g.Go(func() error {
			// Ready once routing (not once bound: its router may still
			// be waiting for NATS), and while its pulls are not refused
			// (a permission reloaded away: it allocates nothing); not
			// ready first thing at a stop.
			select {
			case <-a.Routing():
			case <-gctx.Done():
				return nil
			}
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				env.Ready.Set(!a.Refused())
				select {
				case <-tick.C:
				case <-gctx.Done():
					env.Ready.Set(false)
					return nil
				}
			}
		})
		return a.Run(gctx)
	})
	return g.Wait()
}

// notConnected answers the autoscaler webhook before NATS is reached.
func notConnected(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "not connected to NATS yet", http.StatusServiceUnavailable)
}
