package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/autoscale"
)

// config is the allocator service's configuration: every flag (and its
// environment variable, envflag) is registered by register, each default
// stated once, there or in the part's own RegisterFlags.
type config struct {
	// service: NATS, logging, provisioning, and Regions, the regions
	// whose capacity this allocator reports.
	service service.Options
	// opsAddr serves /healthz, /readyz, /metrics and POST /autoscale.
	opsAddr string
	// alloc is the allocator's; its JoinKey is read from joinKeyFile,
	// and Requeue is onNoCapacity == "requeue".
	alloc        allocator.Config
	joinKeyFile  string
	onNoCapacity string
	backend      backendConfig
	// pollEvery is how often game-server capacity is read and reported,
	// and the rooms' backfill requests looked at (alloc.Backfill.Every).
	pollEvery time.Duration
	scale     autoscale.Config
}

func (c *config) register(fs *flag.FlagSet) {
	c.service.RegisterFlags(fs)
	fs.StringVar(&c.opsAddr, "ops-addr", ":9103", "address of /healthz, /readyz and /metrics")
	c.backend.register(fs)
	// Every region by default: the local servers serve them all.
	c.service.Regions = append(events.Regions(nil), events.DefaultRegions...)
	fs.Var(&c.service.Regions, "regions", "regions whose capacity this allocator reports, comma-separated")
	fs.DurationVar(&c.pollEvery, "capacity-interval", time.Second, "how often game-server capacity is read and reported, and the rooms' backfill requests looked at")
	c.scale.RegisterFlags(fs)
	fs.StringVar(&c.joinKeyFile, "join-key-file", "", "PEM file of the Ed25519 private key that signs join tokens (openssl genpkey -algorithm ed25519); game servers verify with its public key (required)")
	c.alloc.RegisterFlags(fs)
	fs.StringVar(&c.onNoCapacity, "on-no-capacity", "fail", "when no game server is found in time: fail (tell the players) or requeue (queue their tickets again, keeping their wait)")
}

// parse reads the command line and the environment, and the join key.
func parse(args []string) (config, error) {
	var c config
	fs := envflag.NewFlagSet("allocator", about)
	c.register(fs)
	if err := envflag.Parse(fs, args); err != nil {
		return c, err
	}
	switch c.onNoCapacity {
	case "fail":
	case "requeue":
		c.alloc.Requeue = true
	default:
		return c, fmt.Errorf("on-no-capacity %q: want fail or requeue", c.onNoCapacity)
	}
	if c.joinKeyFile == "" {
		return c, errors.New("-join-key-file is required: the private key that signs join tokens")
	}
	key, err := jointoken.LoadPrivateKey(c.joinKeyFile)
	if err != nil {
		return c, err
	}
	c.alloc.JoinKey = key
	c.alloc.Backfill.Every = c.pollEvery
	// Refused here, before NATS is waited for, not behind a healthy
	// probe (allocator.New checks the same again).
	if err := errors.Join(c.alloc.Validate(), c.stopGrace()); err != nil {
		return c, err
	}
	return c, nil
}

// stopGrace refuses a shutdown grace shorter than a kube backend's call
// may take (events.AllocatorStopGrace): a rollout would exit under calls
// in flight, and each of their matches would wait for its reservation to
// go stale (events.AllocatorReservationStale) before it is allocated. The
// local backend answers at once.
func (c *config) stopGrace() error {
	if c.backend.kind != "kube" || c.alloc.CloseTimeout >= events.AllocatorStopGrace {
		return nil
	}
	return fmt.Errorf("shutdown-grace %s is shorter than a kube backend call and its record may take (%s): a match in flight at a stop would wait %s",
		c.alloc.CloseTimeout, events.AllocatorStopGrace, events.AllocatorReservationStale)
}
