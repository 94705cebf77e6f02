package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
)

// runResult is what `load run` reports (also as JSON with -json).
type runResult struct {
	Rate       float64          `json:"rate_per_second"`
	Seconds    float64          `json:"seconds"`
	Sent       int64            `json:"tickets_sent"`
	Assigned   int64            `json:"assigned"`
	Throughput float64          `json:"assigned_per_second"`
	Errors     map[string]int64 `json:"errors_by_kind"`
	// Latency from the ticket's POST (or publish, -via nats) to its
	// assignment, in milliseconds.
	Latency map[string]float64 `json:"latency_ms"`
	// Accepted is the latency of the POST alone (to the frontend's 202;
	// -via nats: to JetStream's ack),
	// of the tickets that were then assigned: where Latency is long and
	// this is too, the wait was before the ticket was even queued.
	Accepted map[string]float64 `json:"accepted_ms"`
	// Refused is how many POSTs were answered 503 (overload, a full
	// region, a drain: admission refused, Retry-After given; or a frontend
	// still starting, which chaos's restarts meet; also counted
	// in Errors as post_503), RefusedLatency how long they took from the
	// POST to the 503, as Accepted is timed: beyond capacity the excess
	// must be refused at once, and the accepted keep their latency.
	Refused        int64              `json:"refused"`
	RefusedLatency map[string]float64 `json:"refused_ms,omitempty"`
	// Resent is how many POSTs were sent again (-retries): what the
	// refusals and failures brought back on top of the arrivals. A
	// ticket counts once in Refused and Accepted, timed from its first
	// POST to its last answer.
	Resent int64 `json:"resent,omitempty"`
	// Windows splits the run by arrival time (-interval): whether the rate
	// was sustained, and whether latency grew as the run went on.
	Windows []window `json:"windows,omitempty"`
	// FirstSentAt is when the first ticket was sent, LastAssignedAt when
	// the last one was assigned (absent if none was), by the wall clock:
	// the system's work for the assigned tickets lies between them, and a
	// caller measuring it (perf) leaves out what comes before (the tokens
	// minted ahead) and after (a ticket left without a partner, waiting
	// out -timeout: a refusal leaves its region an odd count).
	FirstSentAt    time.Time `json:"first_sent_at"`
	LastAssignedAt time.Time `json:"last_assigned_at,omitzero"`
}

// window is the tickets that arrived in one -interval of the run.
type window struct {
	FromSeconds float64            `json:"from_seconds"`
	Sent        int64              `json:"tickets_sent"`
	Assigned    int64              `json:"assigned"`
	Latency     map[string]float64 `json:"latency_ms"`
	// Refused and RefusedLatency are the window's 503s, timed as the
	// run's: whether slow refusals are spread over the run or gathered
	// in some seconds of it (a start, a collection, a sweep).
	Refused        int64              `json:"refused,omitempty"`
	RefusedLatency map[string]float64 `json:"refused_ms,omitempty"`
}

// runConfig is the flags of `load run`.
type runConfig struct {
	base, recordPath                             string
	rate                                         float64
	duration, timeout, interval, progress        time.Duration
	regions, skills                              string
	h2c, jsonOut, keyed                          bool
	sources, players, burst, retries             int
	via, natsURL, natsPrefix, natsUser, natsPass string
	cpuProfile                                   string
	tokens                                       tokens
}

func (c *runConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.base, "url", "http://127.0.0.1:3000", "frontend base URLs, comma-separated: tickets go to each in turn")
	fs.StringVar(&c.recordPath, "record", "", "write every acknowledged ticket (JSON lines: ticket_id, player_id, frontend, accepted_at, region, skill) and every POST that created none the client knows of (player_id, frontend, sent_at, ended_at, failed) to this file, for a checker")
	fs.Float64Var(&c.rate, "rate", 200, "tickets per second")
	fs.DurationVar(&c.duration, "duration", 30*time.Second, "how long tickets arrive")
	fs.IntVar(&c.burst, "burst", 1, "tickets arrive this many at one instant, at the same mean rate: what arriving together saves (1: one at a time)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "how long one ticket may wait for its assignment")
	fs.StringVar(&c.regions, "regions", "eu,us,asia", "regions to spread tickets over")
	fs.StringVar(&c.skills, "skills", "1600-1999", "skill range of the tickets (one tier keeps every ticket a partner)")
	fs.BoolVar(&c.h2c, "h2c", true, "speak HTTP/2 cleartext to the frontend (streams, not a socket per client)")
	fs.BoolVar(&c.keyed, "idempotency-keys", false, "send a new Idempotency-Key with every POST, as the TypeScript client (every browser) does: the frontend's keyed creation path, not the unkeyed one")
	fs.IntVar(&c.retries, "retries", 0, "with -idempotency-keys, send a POST that failed (no answer: a connection error, or none within 30 s; or a 408, 429, 500, 502, 503 or 504 other than a 503 naming a drained shard or a region with room) again with its key up to N times, after the longer of a backoff (0.5 s doubled up to 15 s, half of it at random) and its Retry-After, each time to the next -url, with Quickmatch-Repeat once an attempt may have made the ticket: what the TypeScript client does (8 times) behind a load balancer. Each failed attempt is a line of -record")
	fs.IntVar(&c.sources, "source-ips", 1, "send from 127.0.0.1..N in turn, a connection (h2c) or connections (HTTP/1.1) each: more ephemeral ports, and N clients to the per-address limits of an -auth-insecure frontend")
	fs.IntVar(&c.players, "players", 0, "how many players send the tickets: 0, a new player for each; N, N players, each asking again as soon as their last ticket has its outcome (a returning player, whose creation reads and replaces their live ticket), and a new player for an arrival that finds all N waiting")
	fs.BoolVar(&c.jsonOut, "json", false, "print the result as JSON")
	fs.StringVar(&c.via, "via", "http", "how tickets arrive: http (POST and Server-Sent Events to -url), ws (a WebSocket per ticket, /ws/events at -url: queued and followed on it; its refusals count as refused POSTs) or nats (published on the shard's JetStream subject, outcome on the player's result subject, no frontend)")
	fs.StringVar(&c.natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS server, with -via nats")
	fs.StringVar(&c.natsPrefix, "subject-prefix", "", "subject prefix of the deployment, with -via nats")
	fs.StringVar(&c.natsUser, "nats-user", "", "NATS user, with -via nats (it must publish tickets and subscribe to results)")
	fs.StringVar(&c.natsPass, "nats-password", "", "NATS password, with -via nats")
	fs.DurationVar(&c.interval, "interval", 0, "also report each interval of arrivals on its own (e.g. 10s): sent, assigned, latency")
	fs.DurationVar(&c.progress, "progress", 5*time.Second, "print a progress line to standard error this often (elapsed, sent, assigned, errors, p50 so far); 0: none")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the load tool's own CPU profile to this file (it shares the machine with what it measures)")
	c.tokens.register(fs)
}

// ticketFunc queues the i-th ticket, the p-th player's, and follows it to
// its outcome: when it was accepted or refused (zero: no answer), and ""
// when assigned or the kind of what went wrong.
type ticketFunc func(ctx context.Context, i, p int, player, region string, skill int) (answered time.Time, kind string)

// runLoad is the open-arrival load: tickets arrive at -rate per second for
// -duration, whatever the system does with them (an arrival never waits
// for an earlier one). Each client queues a ticket and follows it over
// Server-Sent Events until it is assigned, failed or expired. Time to
// assignment goes into an HDR histogram.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg runConfig
	fs := flagSet("run", stdout)
	cfg.register(fs)
	if err := envflag.Parse(fs, args); err != nil {
		return err
	}
	// Refused before anything is set up (a token read, -record truncated,
	// NATS dialled).
	if err := cfg.check(); err != nil {
		return err
	}
	// Over NATS no token is sent, so none is looked for.
	if cfg.via != "nats" {
		if err := cfg.tokens.setup(stderr); err != nil {
			return err
		}
	}
	if cfg.cpuProfile != "" {
		stop, err := profileCPU(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	var lo, hi int
	if _, err := fmt.Sscanf(cfg.skills, "%d-%d", &lo, &hi); err != nil || hi < lo {
		return fmt.Errorf("-skills %q: want lo-hi", cfg.skills)
	}
	regionList := strings.Split(cfg.regions, ",")
	rec, closeRecord, err := openRecord(cfg.recordPath)
	if err != nil {
		return err
	}
	defer closeRecord()
	var resent atomic.Int64
	ticket, closeDriver, err := cfg.driver(rec, &resent)
	if err != nil {
		return err
	}
	defer closeDriver()
	run := runID()
	player := func(i int) string { return fmt.Sprintf("run-%s-%d", run, i) }
	n := int(cfg.rate * cfg.duration.Seconds())
	players := newCast(cfg.players)
	if cfg.via != "nats" {
		ahead := n
		if cfg.players > 0 {
			ahead = cfg.players
		}
		if err := cfg.tokens.mintAhead(ctx, ahead, cfg.duration+cfg.timeout, player, stderr); err != nil {
			return fmt.Errorf("mint tokens: %w", err)
		}
	}
	st := newRunStats(cfg.duration, cfg.interval)
	stopProgress := st.startProgress(stderr, cfg.progress)
	arrivals := st.arrive(ctx, n, arrivalAt(cfg.rate, cfg.burst), cfg.timeout, ticket, players, player, func(i int) (string, int) {
		return regionList[i%len(regionList)], lo + rand.IntN(hi-lo+1)
	})
	// Bursts end their sends early: the window is at least what the
	// tickets sent take one at a time, or the rates per second would
	// grow with the burst.
	arrivals = max(arrivals, arrivalAt(cfg.rate, 1)(int(st.sent.Load())-1))
	stopProgress()
	if cfg.players > 0 {
		fmt.Fprintf(stderr, "load: %d of %d tickets sent by returning players (-players %d)\n", players.returning.Load(), st.sent.Load(), cfg.players)
	}
	res := st.result(cfg.rate, arrivals, cfg.interval)
	res.Resent = resent.Load()
	if cfg.jsonOut {
		return printJSON(stdout, res)
	}
	res.print(stdout, cfg.via)
	return nil
}

// check refuses settings no run can use.
func (c *runConfig) check() error {
	switch {
	case c.rate <= 0 || c.duration <= 0:
		return fmt.Errorf("-rate %g for -duration %s: want both above zero", c.rate, c.duration)
	case c.players < 0:
		return fmt.Errorf("-players %d: want 0 or more", c.players)
	case c.burst < 1:
		return fmt.Errorf("-burst %d: want 1 or more", c.burst)
	case c.retries < 0 || c.retries > 0 && !c.keyed:
		return fmt.Errorf("-retries %d: want 0, or more with -idempotency-keys (a POST sent again without its key may queue a second ticket)", c.retries)
	case c.via == "ws" && c.keyed:
		return errors.New("-idempotency-keys with -via ws: a WebSocket's ticket has no key (its socket is its one attempt)")
	}
	return nil
}

// driver is how tickets arrive (-via): POSTed to the frontends in turn and
// followed over Server-Sent Events, queued and followed on a WebSocket
// each, or published on JetStream.
func (c *runConfig) driver(rec *recorder, resent *atomic.Int64) (ticketFunc, func(), error) {
	switch c.via {
	case "http", "ws":
		bases := strings.Split(c.base, ",")
		for i := range bases {
			bases[i] = strings.TrimRight(strings.TrimSpace(bases[i]), "/")
		}
		hc := client(c.h2c, c.sources, 256)
		each, wd := follow, (*websocket.Dialer)(nil)
		if c.via == "ws" {
			each, wd = followWS, wsDialer(c.sources)
		}
		fes := make([]frontend, len(bases))
		for i, b := range bases {
			fe, err := newFrontend(b, hc, wd, c.keyed)
			if err != nil {
				return nil, nil, fmt.Errorf("-url: %w", err)
			}
			fe.retries, fe.next, fe.resent = c.retries, &fes[(i+1)%len(fes)], resent
			fes[i] = fe
		}
		return func(ctx context.Context, i, p int, player, region string, skill int) (time.Time, string) {
			return each(ctx, fes[i%len(fes)], &c.tokens, p, player, region, skill, rec)
		}, func() {}, nil
	case "nats":
		d, err := newNATSDriver(c.natsURL, c.natsPrefix, c.natsUser, c.natsPass)
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context, _, _ int, player, region string, skill int) (time.Time, string) {
			return d.follow(ctx, player, region, skill)
		}, d.close, nil
	default:
		return nil, nil, fmt.Errorf("-via %q: want http, ws or nats", c.via)
	}
}

// print is the text form of the result; via names what "sent" and
// "accepted" were.
func (res runResult) print(stdout io.Writer, via string) {
	fmt.Fprintf(stdout, "arrivals    %d tickets at %.0f/s over %.1fs\n", res.Sent, res.Rate, res.Seconds)
	fmt.Fprintf(stdout, "assigned    %d (%.0f/s)\n", res.Assigned, res.Throughput)
	sendTo, ackBy := "POST", "202"
	switch via {
	case "ws":
		sendTo, ackBy = "connect", "queued"
	case "nats":
		sendTo, ackBy = "publish", "stored"
	}
	fmt.Fprintf(stdout, "latency ms  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%s to assignment)\n",
		res.Latency["p50"], res.Latency["p90"], res.Latency["p99"], res.Latency["p99.9"], res.Latency["max"], sendTo)
	fmt.Fprintf(stdout, "accepted ms p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%s to %s, of those)\n",
		res.Accepted["p50"], res.Accepted["p90"], res.Accepted["p99"], res.Accepted["p99.9"], res.Accepted["max"], sendTo, ackBy)
	if r := res.RefusedLatency; res.Refused > 0 {
		fmt.Fprintf(stdout, "refused     %d  p50 %.1f  p99 %.1f  max %.1f ms  (%s to 503)\n",
			res.Refused, r["p50"], r["p99"], r["max"], sendTo)
	}
	if res.Resent > 0 {
		fmt.Fprintf(stdout, "resent      %d POSTs sent again (-retries)\n", res.Resent)
	}
	for _, w := range res.Windows {
		fmt.Fprintf(stdout, "from %5.0fs  sent %d  assigned %d  p50 %.1f  p99 %.1f  max %.1f ms",
			w.FromSeconds, w.Sent, w.Assigned, w.Latency["p50"], w.Latency["p99"], w.Latency["max"])
		if r := w.RefusedLatency; w.Refused > 0 {
			fmt.Fprintf(stdout, "  refused %d  p50 %.1f  p99 %.1f  max %.1f ms", w.Refused, r["p50"], r["p99"], r["max"])
		}
		fmt.Fprintln(stdout)
	}
	kinds := make([]string, 0, len(res.Errors))
	for k := range res.Errors {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(stdout, "error       %s: %d%s\n", k, res.Errors[k], errorHints[k])
	}
}

// errorHints say what the refusals a first run meets mean.
var errorHints = map[string]string{
	"post_401": "  (the frontend wants a token: -token-key, make run's is " + devIssuerKey + ", or -token)",
	"post_429": "  (rate-limited per client: each player with -token-key, else the address, and each player's creations; see the frontend's -rate-limit and -create-rate-limit)",
}

// profileCPU writes a CPU profile of this process to path until stop.
func profileCPU(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "cpu profile:", err)
		}
	}, nil
}
