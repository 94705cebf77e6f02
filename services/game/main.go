// Command game is the rock-paper-scissors game server: many rooms per
// process, one per match, joined with the tokens the allocator signs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/logging"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/services/game/internal/server"
)

func main() {
	ops.MaybeProbe(os.Args[1:]) // "probe URL": the container healthcheck
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "game:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var (
		cfg       server.Config
		httpAddr  string
		joinKeys  jointoken.KeysConfig
		sdkURL    string
		logFormat string
		logLevel  string
		grace     time.Duration
	)
	fs := flag.NewFlagSet("game", flag.ContinueOnError)
	fs.StringVar(&httpAddr, "http-addr", ":7000", "address of the play page, the WebSocket, /status and /metrics")
	fs.StringVar(&joinKeys.Path, "join-public-keys", "", "PEM file, or directory of PEM files, of the Ed25519 public keys that verify join tokens (the allocator signs with the private keys); re-read when it changes, so keys rotate with no restart (required)")
	fs.DurationVar(&joinKeys.Reload, "join-public-keys-reload", 10*time.Second, "how often -join-public-keys is read again (a token of an unknown key also reads it, at most once a second)")
	fs.StringVar(&sdkURL, "agones-sdk", "auto", "Agones SDK sidecar URL; auto: http://localhost:$AGONES_SDK_HTTP_PORT when Agones set it, else none; none: run without Agones")
	fs.BoolVar(&cfg.Reuse, "reuse", true, "when every room has ended, go back to Ready for reuse (else ask Agones to shut the server down)")
	fs.DurationVar(&cfg.HealthEvery, "health-interval", 2*time.Second, "Agones health ping interval")
	fs.IntVar(&cfg.BestOf, "best-of", 3, "rounds that decide a game (odd)")
	fs.DurationVar(&cfg.ReconnectGrace, "reconnect-grace", 15*time.Second, "how long a dropped player may come back before forfeiting")
	fs.IntVar(&cfg.MaxRooms, "max-rooms", 100, "rooms that may run at once")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 2*time.Minute, "a room in which nothing happens for this long ends")
	fs.DurationVar(&grace, "shutdown-grace", 30*time.Second, "after SIGTERM, how long running rooms may finish (keep below the pod's terminationGracePeriodSeconds)")
	fs.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	if err := envflag.Parse(fs, args); err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "game", logFormat, logLevel)
	if err != nil {
		return err
	}
	if joinKeys.Path == "" {
		return errors.New("-join-public-keys is required: the public keys that verify join tokens")
	}
	joinKeys.OnReloadError = func(err error) {
		log.Error("join token public keys: read failed; the keys read before stay in use", "err", err)
	}
	joinKeys.OnChange = func(ids []string) { log.Info("join token public keys changed", "key_ids", ids) }
	keys, err := jointoken.LoadKeys(joinKeys)
	if err != nil {
		return err
	}
	cfg.JoinKeys = keys
	log.Info("join token public keys", "path", joinKeys.Path, "key_ids", keys.IDs())
	switch {
	case sdkURL == "auto" && os.Getenv("AGONES_SDK_HTTP_PORT") != "":
		cfg.SDK = sdk.New("http://localhost:" + os.Getenv("AGONES_SDK_HTTP_PORT"))
	case sdkURL == "auto" || sdkURL == "none":
	default:
		cfg.SDK = sdk.New(sdkURL)
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", httpAddr, err)
	}
	log.Info("game server listening", "addr", ln.Addr().String(), "agones", cfg.SDK != nil)

	// The HTTP server and the Agones lifecycle outlive the signal: running
	// rooms keep being served (and players may reconnect) while they drain.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	httpErr := make(chan error, 1)
	go func() {
		httpErr <- ops.Serve(runCtx, &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}, ln, 5*time.Second)
	}()
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
	return <-httpErr
}
