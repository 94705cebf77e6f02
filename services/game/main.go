// Command game is the rock-paper-scissors game server: many rooms per
// process, one per match, joined with the tokens the allocator signs.
//
// config.go holds its configuration (every flag, with its default, once);
// what it serves to players and the allocator is pkg/play.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/logging"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
	"github.com/quickmatch-dev/quickmatch/services/game/internal/server"
)

// about says what the game server is: the first line of its -h
// and of its package comment (TestHelp checks that they agree).
const about = "game is the rock-paper-scissors game server: many rooms per process, one per match, joined with the tokens the allocator signs."

func main() { service.Main("game", run) }

func run(ctx context.Context, args []string) error {
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "game", cfg.logFormat, cfg.logLevel)
	if err != nil {
		return err
	}
	stopTracing, err := tracing.Setup(ctx, "game", log)
	if err != nil {
		return err
	}
	defer func() {
		// The last spans are exported within tracing.FlushBound.
		if err := stopTracing(context.Background()); err != nil {
			log.Warn("tracing flush", "err", err)
		}
	}()
	srv, err := cfg.newServer(log)
	if err != nil {
		return err
	}
	// Whoever started this process on port 0 reads the address from the
	// line Listen logs.
	ln, err := ops.Listen(log, ops.NameHTTP, cfg.httpAddr)
	if err != nil {
		return err
	}
	handlers := []http.Handler{srv.Handler()}
	lns := []net.Listener{ln}
	if cfg.opsAddr != "" {
		opsLn, err := ops.Listen(log, ops.NameOps, cfg.opsAddr)
		if err != nil {
			_ = ln.Close()
			return err
		}
		handlers = []http.Handler{srv.PlayersHandler(), srv.OpsHandler()}
		lns = append(lns, opsLn)
	}
	return serve(ctx, srv, lns, handlers, cfg.grace)
}

// serve runs the game server, handlers[i] on lns[i], until ctx ends
// (SIGTERM), then drains: no new rooms, the running ones may finish
// within grace.
func serve(ctx context.Context, srv *server.Server, lns []net.Listener, handlers []http.Handler, grace time.Duration) error {
	// The HTTP servers and the Agones lifecycle outlive the signal: running
	// rooms keep being served (and players may reconnect) while they drain.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	httpErr := make(chan error, len(lns))
	for i, ln := range lns {
		go func() {
			httpErr <- ops.Serve(runCtx, ops.NewServer(handlers[i]), ln, 5*time.Second)
		}()
	}
	lifeErr := make(chan error, 1)
	go func() { lifeErr <- srv.Run(runCtx) }() // Ready: the listener is up
	select {
	case <-ctx.Done():
	case err := <-httpErr:
		return err
	case err := <-lifeErr:
		if err != nil {
			return fmt.Errorf("agones lifecycle: %w", err)
		}
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	srv.Drain(drainCtx)
	stopRun()
	var errs []error
	for range lns {
		errs = append(errs, <-httpErr)
	}
	return errors.Join(errs...)
}
