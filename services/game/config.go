package main

import (
	"errors"
	"flag"
	"log/slog"
	"os"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
	"github.com/quickmatch-dev/quickmatch/services/game/internal/server"
)

// config is the game server's configuration: every flag (and its
// environment variable, envflag) is registered by register, each default
// stated once, there or in server.Config.RegisterFlags.
type config struct {
	// server is the game's; its JoinKeys come from joinKeys, its SDK from
	// sdkURL.
	server server.Config
	// httpAddr serves the play page and the WebSocket, and opsAddr
	// /healthz, /metrics and /status; opsAddr empty: httpAddr serves them
	// all.
	httpAddr, opsAddr string
	joinKeys          jointoken.KeysConfig
	sdkURL            string
	// grace is how long running rooms may finish after SIGTERM.
	grace     time.Duration
	logFormat string
	logLevel  string
}

func (c *config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.httpAddr, "http-addr", ":7000", "address of the play page and the WebSocket (and of -ops-addr's paths when it is empty)")
	fs.StringVar(&c.opsAddr, "ops-addr", "", "address of /healthz, /metrics and /status (open match ids, seated player ids: keep it off the players' network; the Helm chart does); empty: served on -http-addr")
	fs.StringVar(&c.joinKeys.Path, "join-public-keys", "", "PEM file, or directory of PEM files, of the Ed25519 public keys that verify join tokens (the allocator signs with the private keys); re-read when it changes, so keys rotate with no restart (required)")
	fs.DurationVar(&c.joinKeys.Reload, "join-public-keys-reload", jointoken.DefaultReload, "how often -join-public-keys is read again (a token of an unknown key also reads it, at most once a second)")
	fs.StringVar(&c.sdkURL, "agones-sdk", "auto", "Agones SDK sidecar URL; auto: http://localhost:$AGONES_SDK_HTTP_PORT when Agones set it, else none; none: run without Agones")
	c.server.RegisterFlags(fs)
	fs.DurationVar(&c.grace, "shutdown-grace", 30*time.Second, "after SIGTERM, how long running rooms may finish (keep below the pod's terminationGracePeriodSeconds)")
	fs.StringVar(&c.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
}

// parse reads the command line and the environment.
func parse(args []string) (config, error) {
	var c config
	fs := envflag.NewFlagSet("game", about)
	c.register(fs)
	tracing.Document(fs)
	return c, envflag.Parse(fs, args)
}

// newServer loads the join keys, finds the Agones sidecar and builds the
// game server.
func (c *config) newServer(log *slog.Logger) (*server.Server, error) {
	if c.joinKeys.Path == "" {
		return nil, errors.New("-join-public-keys is required: the public keys that verify join tokens")
	}
	c.joinKeys.OnReloadError = func(err error) {
		log.Error("join token public keys: read failed; the keys read before stay in use", "err", err)
	}
	c.joinKeys.OnChange = func(ids []string) { log.Info("join token public keys changed", "key_ids", ids) }
	keys, err := jointoken.LoadKeys(c.joinKeys)
	if err != nil {
		return nil, err
	}
	c.server.JoinKeys = keys
	log.Info("join token public keys", "path", c.joinKeys.Path, "key_ids", keys.IDs())
	switch port := os.Getenv("AGONES_SDK_HTTP_PORT"); {
	case c.sdkURL == "auto" && port != "":
		c.server.SDK = sdk.New("http://localhost:" + port)
	case c.sdkURL == "auto" || c.sdkURL == "none":
	default:
		c.server.SDK = sdk.New(c.sdkURL)
	}
	log.Info("agones", "sidecar", c.server.SDK != nil)
	return server.New(c.server, log)
}
