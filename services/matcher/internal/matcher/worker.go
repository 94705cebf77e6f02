// Package matcher is a matcher worker: it takes tickets in, owns some
// shards, and forms matches in the shards it owns.
//
// Shards: each shard (region and tier) has its own durable consumer on its
// subject of the tickets stream, and only the worker holding the shard's
// lease consumes it (package shard decides who). So every ticket of a
// shard meets every other ticket of that shard however many workers run,
// in one hop from the publisher, and shards move when workers come and go.
// The owner validates each ticket as it arrives, and dead-letters what is
// bad (telling the players why when it can name them). A second consumer
// per shard, on the OFFERS stream, brings it visitors: tickets another
// region's shard offers once their latency budget reaches this region.
// Tickets on a subject no shard consumes are dead-lettered by a sweep
// every worker runs (strays).
//
// Concurrency: one goroutine per owned shard (runner.run) holds that
// shard's pools and does all its matching; the consume callback and the
// cancel subscription only hand it messages over channels. Nothing in a
// shard is shared, so shards match in parallel without locks.
//
// One live ticket per player: before a shard pools a ticket it takes it
// in as the live ticket of its players (events.Players, the players
// bucket), which supersedes the player's earlier undecided ticket in any
// region, tier or mode, through that ticket's claim. A ticket whose id
// is already another ticket's, of other players (a publisher reusing an
// id), is dead-lettered instead (events.ErrTicketIDTaken): the claim it
// would share is the other ticket's. A pool never matches
// one player twice either (a visitor copy may meet its player's newer
// ticket before the notice that drops it arrives).
//
// Outcomes: a waiting ticket stays unacked in its shard's pool; it is acked
// only after what ends it is stored and claimed (events.Claims): a match on
// the allocations stream, an expiry or supersession result, a dead letter.
// A worker that dies leaves its tickets unacked; the worker that takes the
// shard over resets the consumer, which redelivers them at once.
package matcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/modes"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/shard"
)

// Source is the name the matcher signs its dead letters with.
const Source = "matcher"

// Config of a matcher worker.
type Config struct {
	// WorkerID names this worker in the workers and leases buckets;
	// default: host name and a random suffix.
	WorkerID string
	// Regions and Tiers a ticket's subject must name; they make the shards.
	Regions events.Regions
	Tiers   events.Tiers
	// ModesFile is a JSON list of modes; empty means modes.Defaults.
	ModesFile string
	// Sweep is how often each shard expires tickets, retries the oldest
	// ones with their widened windows and offers tickets to other regions.
	Sweep time.Duration
	// SweepAnchors bounds the oldest tickets retried per sweep per mode.
	SweepAnchors int
	// PublishTimeout bounds each publish and claim.
	PublishTimeout time.Duration
	// StraySweep is how often tickets on subjects no shard consumes are
	// looked for and dead-lettered.
	StraySweep time.Duration
}

// RegisterFlags adds the matcher's flags to fs, with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Regions = append(events.Regions(nil), events.DefaultRegions...)
	c.Tiers = append(events.Tiers(nil), events.DefaultTiers...)
	fs.StringVar(&c.WorkerID, "worker-id", "", "name of this worker (default: host name and a random suffix)")
	fs.Var(&c.Regions, "regions", "regions served, comma-separated")
	fs.Var(&c.Tiers, "tiers", "skill tiers as name:min_skill, increasing")
	fs.StringVar(&c.ModesFile, "modes-file", "", "JSON file of game modes (default: built-in 1v1, 2v2, 5v5, ffa)")
	fs.DurationVar(&c.Sweep, "sweep", 250*time.Millisecond, "how often waiting tickets are expired and retried with widened windows")
	fs.IntVar(&c.SweepAnchors, "sweep-anchors", 2000, "oldest tickets retried per sweep per shard and mode")
	fs.DurationVar(&c.PublishTimeout, "publish-timeout", 5*time.Second, "bound on each publish to JetStream")
	fs.DurationVar(&c.StraySweep, "stray-sweep", strayEvery, "how often tickets on subjects no shard serves are dead-lettered")
}

func (c *Config) setDefaults() {
	if len(c.Regions) == 0 {
		c.Regions = events.DefaultRegions
	}
	if len(c.Tiers) == 0 {
		c.Tiers = events.DefaultTiers
	}
	if c.Sweep <= 0 {
		c.Sweep = 250 * time.Millisecond
	}
	if c.SweepAnchors <= 0 {
		c.SweepAnchors = 2000
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.StraySweep <= 0 {
		c.StraySweep = strayEvery
	}
	if c.WorkerID == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		c.WorkerID = host + "-" + hex.EncodeToString(b[:])
	}
}

type metrics struct {
	tickets  *prometheus.CounterVec
	matches  *prometheus.CounterVec
	waiting  *prometheus.GaugeVec
	waitTime prometheus.Histogram
	spread   prometheus.Histogram
	shards   prometheus.Gauge
	// strayReads counts the messages the stray sweep reads: its cost.
	strayReads prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		tickets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quickmatch_matcher_tickets_total", Help: "Tickets by what happened to them.",
		}, []string{"outcome"}),
		matches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quickmatch_matcher_matches_total", Help: "Matches formed by mode.",
		}, []string{"mode"}),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "quickmatch_matcher_pool_tickets", Help: "Tickets waiting in the pools this worker owns.",
		}, []string{"shard", "mode"}),
		waitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "quickmatch_matcher_wait_seconds", Help: "Wait from ticket creation to match.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
		}),
		spread: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "quickmatch_matcher_skill_spread", Help: "Highest minus lowest skill in a formed match.",
			Buckets: []float64{0, 25, 50, 100, 200, 400, 800, 1600},
		}),
		shards: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "quickmatch_matcher_owned_shards", Help: "Shards this worker owns.",
		}),
		strayReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quickmatch_matcher_stray_sweep_reads_total", Help: "Messages of the tickets stream read looking for stray tickets.",
		}),
	}
	reg.MustRegister(m.tickets, m.matches, m.waiting, m.waitTime, m.spread, m.shards, m.strayReads)
	return m
}

// Worker is one matcher process.
type Worker struct {
	cfg    Config
	modes  modes.Set
	js     jetstream.JetStream
	nc     *nats.Conn
	subj   events.Subjects
	pub    *events.Publisher
	claims *events.Claims
	// players keeps each player's one live ticket (runner.admit);
	// tellSuperseded ends the ticket a newer one replaced.
	players        *events.Players
	tellSuperseded events.SupersededFunc
	// matches keeps formed matches for recovery (see runner.recoverMatch);
	// decisions, in the same bucket, each match's one fate.
	matches   jetstream.KeyValue
	decisions *events.Decisions
	log       *slog.Logger
	met       *metrics
	now       func() time.Time

	// shardSubjects are the ticket subjects the shards consume.
	shardSubjects map[string]bool
	// strayCursor is, per covering filter of stray subjects, the stream
	// sequence its search resumes from (only the strays goroutine uses it).
	strayCursor map[string]uint64

	// claimed and checked, when set (tests only), are called by a commit
	// between claiming its match's tickets and checking that they are
	// still live, and between that check and deciding the match.
	claimed, checked func(matchID string)

	mu      sync.Mutex
	runners map[events.Shard]*runner
	// settle counts the rejected tickets being dead-lettered.
	settle sync.WaitGroup
}

// New returns a worker. reg receives its metrics.
func New(cfg Config, js jetstream.JetStream, subj events.Subjects, log *slog.Logger, reg prometheus.Registerer) (*Worker, error) {
	cfg.setDefaults()
	set := modes.Defaults()
	if cfg.ModesFile != "" {
		var err error
		if set, err = modes.Load(cfg.ModesFile); err != nil {
			return nil, err
		}
	}
	if err := errors.Join(cfg.Tiers.Validate(), set.Validate()); err != nil {
		return nil, fmt.Errorf("matcher config: %w", err)
	}
	w := &Worker{
		cfg: cfg, modes: set, js: js, nc: js.Conn(), subj: subj, log: log.With("worker", cfg.WorkerID),
		pub: events.NewPublisher(js, subj), met: newMetrics(reg), now: time.Now,
		runners: map[events.Shard]*runner{}, shardSubjects: map[string]bool{}, strayCursor: map[string]uint64{},
	}
	for _, s := range w.Shards() {
		w.shardSubjects[subj.Ticket(s.Region, s.Tier)] = true
	}
	return w, nil
}

// ID is the worker's name.
func (w *Worker) ID() string { return w.cfg.WorkerID }

// Shards is what the worker's regions and tiers make.
func (w *Worker) Shards() []events.Shard {
	return events.Topology{Regions: w.cfg.Regions, Tiers: w.cfg.Tiers}.Shards()
}

// bind binds the worker to the buckets it keeps its decisions in.
func (w *Worker) bind(ctx context.Context) error {
	claims, err := events.NewClaims(ctx, w.js, w.subj)
	if err != nil {
		return err
	}
	w.claims = claims
	if w.players, err = events.NewPlayers(ctx, w.js, w.subj, claims); err != nil {
		return err
	}
	w.tellSuperseded = w.pub.TellSuperseded(w.cfg.Regions, func(err error) {
		w.log.Warn("the claim rules the superseded ticket out", "err", err)
	})
	if w.matches, err = w.js.KeyValue(ctx, w.subj.MatchesBucket()); err != nil {
		return fmt.Errorf("matches bucket: %w", err)
	}
	if w.decisions, err = events.NewDecisions(ctx, w.js, w.subj); err != nil {
		return err
	}
	return nil
}

// Run takes tickets in and owns shards until ctx ends; then it hands its
// shards back (their tickets are redelivered to the next owner at once).
func (w *Worker) Run(ctx context.Context) error {
	if err := w.bind(ctx); err != nil {
		return err
	}
	mgr, err := shard.New(ctx, w.js, w.subj, w.cfg.WorkerID, w.Shards(), w, w.log)
	if err != nil {
		return err
	}
	sub, err := w.nc.Subscribe(w.subj.AllCancels(), w.routeCancel)
	if err != nil {
		return fmt.Errorf("subscribe to cancels: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	w.log.Info("matcher worker running", "regions", w.cfg.Regions.String(), "tiers", w.cfg.Tiers.String())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.strays(gctx) })
	g.Go(func() error { return mgr.Run(gctx) })
	err = g.Wait()
	w.settle.Wait() // every rejected ticket dead-lettered or naked
	return err
}

// Acquire starts consuming a shard (shard.Owner).
func (w *Worker) Acquire(ctx context.Context, s events.Shard) {
	r := newRunner(w, s)
	w.mu.Lock()
	w.runners[s] = r
	n := len(w.runners)
	w.mu.Unlock()
	w.met.shards.Set(float64(n))
	go r.run(context.WithoutCancel(ctx))
}

// Release stops consuming a shard and hands its tickets back (shard.Owner).
func (w *Worker) Release(s events.Shard) {
	w.mu.Lock()
	r := w.runners[s]
	delete(w.runners, s)
	n := len(w.runners)
	w.mu.Unlock()
	w.met.shards.Set(float64(n))
	if r != nil {
		r.stop()
	}
}

// routeCancel hands a cancel notice to the runner of the ticket's shard.
func (w *Worker) routeCancel(msg *nats.Msg) {
	c, err := events.DecodeCancel(msg.Data)
	if err != nil {
		w.log.Warn("bad cancel notice ignored", "subject", msg.Subject, "err", err)
		return
	}
	w.mu.Lock()
	r := w.runners[events.Shard{Region: c.Region, Tier: c.Tier}]
	w.mu.Unlock()
	if r != nil {
		r.cancel(c.TicketID)
	}
}

// superseded tells the players of old that their ticket ended, superseded
// by their ticket newer, and asks the shards of old's tier in every region
// to drop it (events.Publisher.TellSuperseded).
func (w *Worker) superseded(ctx context.Context, old events.LiveTicket, newer string) error {
	if err := w.tellSuperseded(ctx, old, newer); err != nil {
		return err
	}
	w.met.tickets.WithLabelValues("superseded").Inc()
	w.log.Info("ticket superseded", "ticket_id", old.TicketID, "by", newer)
	return nil
}

// ack, nak and term answer a JetStream message by its reply subject: the pools
// keep that subject, not the message. A nak asks for redelivery after a
// second, so a ticket that cannot be ended now (NATS away) does not spin.
func (w *Worker) ack(reply string) { _ = w.nc.Publish(reply, []byte("+ACK")) }
func (w *Worker) nak(reply string) { _ = w.nc.Publish(reply, []byte(`-NAK {"delay": 1000000000}`)) }

// term ends a message for good: it is never redelivered.
func (w *Worker) term(reply string) { _ = w.nc.Publish(reply, []byte("+TERM")) }
