// Command game is the rock-paper-scissors game server: many rooms per
// process, one per match, joined with the tokens the allocator signs.
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/logging"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/services/game/internal/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "game:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var (
		cfg        server.Config
		httpAddr   string
		joinSecret string
		logFormat  string
		logLevel   string
		grace      time.Duration
	)
	fs := flag.NewFlagSet("game", flag.ContinueOnError)
	fs.StringVar(&httpAddr, "http-addr", ":7000", "address of the play page and the WebSocket")
	fs.StringVar(&joinSecret, "join-secret", "", "hex secret that verifies join tokens; the allocator holds the same (required)")
	fs.IntVar(&cfg.BestOf, "best-of", 3, "rounds that decide a game (odd)")
	fs.DurationVar(&cfg.ReconnectGrace, "reconnect-grace", 15*time.Second, "how long a dropped player may come back before forfeiting")
	fs.IntVar(&cfg.MaxRooms, "max-rooms", 100, "rooms that may run at once")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 2*time.Minute, "a room in which nothing happens for this long ends")
	fs.DurationVar(&grace, "shutdown-grace", 30*time.Second, "after SIGTERM, how long running rooms may finish")
	fs.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	if err := envflag.Parse(fs, args); err != nil {
		return err
	}
	secret, err := hex.DecodeString(joinSecret)
	if err != nil {
		return fmt.Errorf("join-secret must be hex: %w", err)
	}
	cfg.JoinSecret = secret
	log, err := logging.New(os.Stderr, "game", logFormat, logLevel)
	if err != nil {
		return err
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	log.Info("game server listening", "addr", httpAddr)
	err = ops.ListenAndServe(ctx, httpAddr, srv.Handler(), grace)
	// The listener is closed; rooms already running may finish.
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		log.Warn("rooms still running at the end of the shutdown grace", "rooms", srv.Rooms())
	}
	return err
}
