// Command frontend takes match requests from players over HTTP and tells
// them where to play.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/capacity"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

func main() {
	ops.MaybeProbe(os.Args[1:]) // "probe URL": the container healthcheck
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "frontend:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var (
		opts      service.Options
		apiCfg    api.Config
		httpAddr  string
		grace     time.Duration
		drainWait time.Duration
		maxWait   time.Duration
		minFree   int
		modeList  string
		maxParty  int
		h2Streams int
		auth      authFlags
		proxies   string
	)
	regions := append(events.Regions(nil), events.DefaultRegions...)
	tiers := append(events.Tiers(nil), events.DefaultTiers...)
	fs := flag.NewFlagSet("frontend", flag.ContinueOnError)
	opts.RegisterFlags(fs)
	fs.Var(&regions, "regions", "regions served, comma-separated")
	fs.Var(&tiers, "tiers", "skill tiers as name:min_skill, increasing")
	fs.StringVar(&modeList, "modes", "1v1,2v2,5v5,ffa", "game modes a ticket may ask for (the matchers' modes)")
	fs.IntVar(&maxParty, "max-party", 5, "largest party accepted (the largest team of any mode)")
	fs.StringVar(&httpAddr, "http-addr", ":3000", "address of the API, the page and the ops endpoints")
	fs.DurationVar(&maxWait, "max-wait", 10*time.Minute, "a ticket this frontend follows is expired after this long without an outcome")
	fs.IntVar(&minFree, "min-free-rooms", 1, "a region whose allocators report fewer free rooms refuses tickets with 503 (0: never refuse)")
	fs.Float64Var(&apiCfg.RatePerSecond, "rate-limit", 20, "requests per second allowed to each client: the player when authenticated, else the address (0: no limit)")
	fs.IntVar(&apiCfg.RateBurst, "rate-burst", 40, "requests a client may make at once")
	fs.BoolVar(&apiCfg.TrustProxy, "trust-proxy", false, "take the client address from X-Forwarded-For, as written by -trusted-proxies (behind a load balancer)")
	fs.StringVar(&proxies, "trusted-proxies", "", "with -trust-proxy: CIDRs of the proxies whose X-Forwarded-For is believed, comma-separated; the client is the rightmost address none of them wrote (default: loopback and the private ranges)")
	fs.IntVar(&apiCfg.MaxStreamsPerClient, "max-streams-per-client", 8, "open SSE streams and WebSockets allowed to one client at once, 429 past it (-1: no cap)")
	fs.DurationVar(&apiCfg.BodyTimeout, "body-timeout", 10*time.Second, "time allowed to send a request body (408 past it)")
	auth.register(fs)
	fs.DurationVar(&apiCfg.Heartbeat, "heartbeat", 15*time.Second, "ping interval for waiting SSE and WebSocket clients")
	fs.StringVar(&apiCfg.WSRegion, "ws-region", "eu", "region of /ws clients that name none")
	fs.IntVar(&apiCfg.WSSkill, "ws-skill", 1000, "skill of /ws clients that give none")
	fs.IntVar(&h2Streams, "h2c-streams", 100, "HTTP/2 cleartext (h2c) streams per connection (each frame written looks at every stream of its connection, so keep it low); 0 turns h2c off (HTTP/1.1 only)")
	fs.DurationVar(&drainWait, "readiness-drain", 0, "after SIGTERM, how long /readyz fails before the server stops (a probe period in Kubernetes)")
	fs.DurationVar(&grace, "shutdown-grace", 10*time.Second, "time for in-flight requests after SIGTERM")
	err := envflag.Parse(fs, args)
	if err != nil {
		return err
	}
	opts.Regions, opts.Tiers = regions, tiers
	if apiCfg.TrustedProxies, err = parsePrefixes(proxies); err != nil {
		return err
	}
	if err := auth.check(httpAddr); err != nil {
		return err
	}
	env, err := service.Start(ctx, "frontend", opts)
	if err != nil {
		return err
	}
	defer env.Close()
	if err := auth.apply(ctx, &apiCfg, env.Log); err != nil {
		return err
	}

	var svc *tickets.Service
	tracker := results.New(env.NC, env.Subjects, env.Log, env.Registry, maxWait, func(ctx context.Context, id string) { svc.Expire(ctx, id) })
	admission, err := capacity.New(ctx, env.JS, env.Subjects, minFree, env.Log)
	if err != nil {
		return err
	}
	svc, err = tickets.New(ctx, tickets.Config{Regions: regions, Tiers: tiers, Modes: strings.Split(modeList, ","), MaxPartySize: maxParty},
		env.JS, env.Subjects, tracker, admission, env.Log)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	h, err := api.New(apiCfg, svc, tracker, env.Log, &env.Ready, env.Registry, done)
	if err != nil {
		return err
	}

	// The tracker and the capacity watcher outlive the HTTP server, which
	// still cancels the tickets of clients it lets go.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return tracker.Run(gctx) })
	g.Go(func() error { return admission.Run(gctx) })

	// Shutdown: fail readiness, wait for load balancers to notice, let
	// waiting clients go (their tickets are cancelled), then stop taking
	// requests and finish the ones in flight.
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	go func() {
		select {
		case <-ctx.Done():
		case <-gctx.Done():
		}
		env.Ready.Set(false)
		time.Sleep(drainWait)
		close(done)
		stopServing()
	}()
	env.Ready.Set(true)
	env.Log.Info("frontend listening", "addr", httpAddr)
	var serveOpts []ops.Option
	if h2Streams > 0 {
		serveOpts = append(serveOpts, ops.WithCleartextHTTP2(h2Streams))
	}
	err = ops.ListenAndServe(serveCtx, httpAddr, h, grace, serveOpts...)
	stopRun()
	return errors.Join(err, g.Wait())
}
