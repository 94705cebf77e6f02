package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/admission"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

// config is the frontend's whole configuration. Every field comes from a
// flag with an environment fallback (-min-free-rooms or MIN_FREE_ROOMS,
// see envflag),
// and each default is stated once: in register, or as a constant of the
// package that uses it (api.Default*, events.Default*).
type config struct {
	service service.Options
	api     api.Config
	tickets tickets.Config
	auth    authFlags

	// httpAddr serves the API, the page and the probes, and /metrics
	// unless opsAddr does.
	httpAddr, opsAddr string
	// minFree is the fewest free rooms a region must report to take tickets.
	minFree int
	// h2Streams bounds the h2c streams of a connection; 0 turns h2c off.
	h2Streams int
	// drainWait fails readiness this long before the server stops.
	drainWait time.Duration
	// grace is the time in-flight requests get after SIGTERM.
	grace time.Duration

	// rulesFile is the rule set file, the matchers' -rules (their
	// Config.RulesFile); empty means rules.Default(). rulesReload is how
	// often it is read again.
	rulesFile   string
	rulesReload time.Duration

	// proxies is the raw flag behind api.TrustedProxies, read by
	// parseConfig.
	proxies string
	// sealKeyFile holds the keys behind tickets.Config.Seals, read by
	// parseConfig: the matchers' -seal-key-file.
	sealKeyFile string
}

// register adds every flag of the frontend to fs, each writing into c.
func (c *config) register(fs *flag.FlagSet) {
	c.service.RegisterFlags(fs)
	c.tickets.Regions = append(events.Regions(nil), events.DefaultRegions...)
	c.tickets.Tiers = append(events.Tiers(nil), events.DefaultTiers...)
	fs.Var(&c.tickets.Regions, "regions", "regions served, comma-separated")
	fs.Var(&c.tickets.Tiers, "tiers", "skill tiers as name:min_skill, increasing")
	fs.StringVar(&c.rulesFile, "rules", "", "rule set file, JSON (pkg/rules), the matchers' own: its modes, team sizes and attributes decide which tickets are taken and the page's modes (default: built-in 1v1, 2v2, 5v5, ffa); reloaded when it changes")
	// 5 s, as the matchers' -rules-reload: frontend and matchers put a
	// changed file in force within the same few seconds.
	fs.DurationVar(&c.rulesReload, "rules-reload", rules.DefaultReload, "how often the rule set file is read again")
	fs.StringVar(&c.sealKeyFile, "seal-key-file", "", "file of the keys that seal each ticket taken first, the matchers' -seal-key-file (one base64 key of 32 bytes or more per line, the first sealing: openssl rand -base64 32); a sealed ticket spares its matcher a read of its players (default: none, nothing sealed)")
	fs.StringVar(&c.httpAddr, "http-addr", ":3000", "address of the API, the page, /healthz and /readyz (and /metrics, unless -ops-addr)")
	fs.StringVar(&c.opsAddr, "ops-addr", "", "address of /healthz, /readyz and /metrics, off the players' port (the Helm chart sets it); empty: /metrics is served on -http-addr")
	fs.IntVar(&c.minFree, "min-free-rooms", 1, "a region whose allocators report fewer free rooms refuses tickets with 503 (0: never refuse)")
	fs.Float64Var(&c.api.RatePerSecond, "rate-limit", 20, "requests per second allowed to each client: the player when authenticated, else the address; a server credential is not limited (0: no limit)")
	fs.IntVar(&c.api.RateBurst, "rate-burst", 40, "requests a client may make at once")
	fs.Float64Var(&c.api.CreateRatePerSecond, "create-rate-limit", 1, "ticket creations per second allowed to each player, besides -rate-limit (a ticket's records live over an hour whatever becomes of it); server credentials are not limited by it (0: no limit)")
	fs.IntVar(&c.api.CreateRateBurst, "create-rate-burst", 5, "ticket creations a player may make at once")
	// Overload control (package admission): on by default, since a
	// frontend past capacity without it makes every player wait.
	fs.DurationVar(&c.api.Admission.Target, "overload-target", admission.DefaultTarget, "mean time of a ticket creation (its JetStream writes) above which the frontend lets fewer creations run at once; past that number a new ticket (POST, /ws, /ws/events) gets 503 overloaded with Retry-After (0: overload control off)")
	fs.IntVar(&c.api.Admission.Min, "overload-min", admission.DefaultMin, "fewest ticket creations overload control lets run at once")
	fs.IntVar(&c.api.Admission.Max, "overload-max", admission.DefaultMax, "most ticket creations overload control lets run at once")
	fs.DurationVar(&c.api.VerifyWait, "verify-wait", api.DefaultVerifyWait, "longest a ticket creation's token verification may wait for a read of the JWKS (a key id it does not know) while it holds its overload control slot; a token still unverified then gets 401")
	fs.BoolVar(&c.api.TrustProxy, "trust-proxy", false, "take the client address from X-Forwarded-For, as written by -trusted-proxies (behind a load balancer)")
	fs.StringVar(&c.proxies, "trusted-proxies", "", "with -trust-proxy: CIDRs of the proxies whose X-Forwarded-For is believed, comma-separated; the client is the rightmost address none of them wrote (default: loopback and the private ranges)")
	fs.IntVar(&c.api.MaxStreamsPerClient, "max-streams-per-client", api.DefaultMaxStreamsPerClient, "open SSE streams and WebSockets allowed to one client at once, 429 past it (-1: no cap)")
	fs.DurationVar(&c.api.WriteTimeout, "write-timeout", api.DefaultWriteTimeout, "time allowed from a request's start to write its answer, and to write each event of an SSE stream or WebSocket: a client that stops reading is cut off past it")
	fs.DurationVar(&c.api.BodyTimeout, "body-timeout", api.DefaultBodyTimeout, "time allowed to send a request body (408 past it), and to take a WebSocket handshake's answer (the connection is closed past it)")
	c.auth.register(fs)
	fs.DurationVar(&c.api.Heartbeat, "heartbeat", api.DefaultHeartbeat, "ping interval for waiting SSE and WebSocket clients")
	fs.DurationVar(&c.api.LostGrace, "lost-grace", api.DefaultLostGrace, "how long (and up to half again) the ticket of a /ws/events client whose connection was lost is kept for it to follow again, on any frontend, before it is cancelled, and how often it is asked about while followed; keep it above the clients' idle timeout (45 s in pkg/client and clients/ts) (negative: kept until its mode's max_wait)")
	fs.DurationVar(&c.api.WaitRefresh, "wait-refresh", api.DefaultWaitRefresh, "how often a queued ticket's SSE and /ws/events clients may be sent its expected wait again, when it moved by more than a quarter (negative: never)")
	fs.StringVar(&c.api.WSRegion, "ws-region", api.DefaultWSRegion, "region of /ws clients that name none")
	fs.IntVar(&c.api.WSSkill, "ws-skill", api.DefaultWSSkill, "skill of /ws clients that give none")
	fs.IntVar(&c.h2Streams, "h2c-streams", 100, "HTTP/2 cleartext (h2c) streams per connection (each frame written looks at every stream of its connection, so keep it low); 0 turns h2c off (HTTP/1.1 only)")
	fs.DurationVar(&c.drainWait, "readiness-drain", 0, "after SIGTERM, how long /readyz fails before the server stops (a probe period in Kubernetes)")
	fs.DurationVar(&c.grace, "shutdown-grace", 10*time.Second, "time for in-flight requests after SIGTERM")
}

// parseConfig reads the command line (and the environment) into a config
// and refuses impossible combinations before anything starts.
func parseConfig(args []string) (config, error) {
	var c config
	fs := envflag.NewFlagSet("frontend", about)
	c.register(fs)
	if err := envflag.Parse(fs, args); err != nil {
		return config{}, err
	}
	c.service.Regions, c.service.Tiers = c.tickets.Regions, c.tickets.Tiers
	c.api.MetricsApart = c.opsAddr != ""
	if c.rulesReload <= 0 {
		return config{}, fmt.Errorf("-rules-reload %s: want above 0", c.rulesReload)
	}
	var err error
	if c.api.TrustedProxies, err = parsePrefixes(c.proxies); err != nil {
		return config{}, err
	}
	if c.api.VerifyWait <= 0 {
		return config{}, fmt.Errorf("-verify-wait %s: want above 0", c.api.VerifyWait)
	}
	if c.api.WriteTimeout > 0 && c.api.Heartbeat >= c.api.WriteTimeout {
		// Over HTTP/2 a stream's write deadline resets it when it fires,
		// a write pending or not: an idle stream lives by its pings.
		return config{}, fmt.Errorf("-heartbeat %s: want below -write-timeout (%s)", c.api.Heartbeat, c.api.WriteTimeout)
	}
	if c.auth.tokenCacheSize == 0 {
		// identity.Config takes 0 for its default: refused rather than
		// read as "no cache".
		return config{}, errors.New("-auth-token-cache-size 0: want above 0, or negative for no cache")
	}
	if c.auth.tokenCacheSize > identity.MaxTokenCacheSize {
		return config{}, fmt.Errorf("-auth-token-cache-size %d: want at most %d", c.auth.tokenCacheSize, identity.MaxTokenCacheSize)
	}
	if err := c.api.Admission.Validate(); err != nil {
		return config{}, fmt.Errorf("overload control: %w", err)
	}
	if err := c.auth.check(c.httpAddr); err != nil {
		return config{}, err
	}
	if c.sealKeyFile != "" {
		if c.tickets.Seals, err = events.LoadSeals(c.sealKeyFile); err != nil {
			return config{}, err
		}
	}
	return c, nil
}
