package matcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/shard"
)

// Source is the name the matcher signs its dead letters with.
const Source = "matcher"

// Worker is one matcher process.
type Worker struct {
	cfg Config
	// rules is the rule set in force, read again every Config.RulesReload
	// (Run). Each runner puts a new one in force in its pools itself
	// (runner.syncRules); the intake checks tickets against the runner's.
	rules *rules.Current
	js    jetstream.JetStream
	nc    *nats.Conn
	subj  events.Subjects
	pub   *events.Publisher
	log   *slog.Logger
	met   *metrics
	// now is the clock: time.Now unless a test sets it (before Run).
	// Each part is handed w.clock, which reads it, when it is made.
	now  func() time.Time
	acks acker
	// in decodes, checks, takes in and dead-letters ticket messages, for
	// the shards and the stray sweep; state is what the commits and
	// recoveries of every shard decide and follow matches with. All the
	// worker's runners share both. New makes the intake and bindState gives
	// it its buckets; bindState makes the state.
	in    *intake
	state *matchState
	// matchSeals are the state's (Config.MatchSealKeyFile), read by New.
	matchSeals *events.Seals
	// outbox sends the matches a runner could not send before it
	// handed its shard back (bindState makes it, Run runs it).
	outbox *outbox
	// mgr leases the shards (Bind makes it).
	mgr *shard.Manager

	// shardSubjects are the ticket subjects the shards consume.
	shardSubjects map[string]bool
	// strayCursor is, per covering filter of stray subjects, the stream
	// sequence its search resumes from (only the strays goroutine uses it).
	strayCursor map[string]uint64

	mu      sync.Mutex
	runners map[events.Shard]*runner
}

// Validate reports what New would refuse in cfg before any NATS: tiers
// that do not validate, a rule set file that does not read or check. A
// main calls it before it waits for NATS, so that a bad configuration
// ends the process at once instead of waiting behind a healthy probe.
func (cfg Config) Validate() error {
	cfg.setDefaults()
	_, _, _, err := cfg.open(nil)
	return err
}

// open checks cfg's tiers, opens its rule set and reads its seal keys
// and match seal keys (each nil without a file), reporting every fault
// at once. A rule set file that cannot be read or is bad refuses the
// start: a matcher must not run without its rules. Later, a bad edit is
// only logged, and the rules in force are kept (rules.Current). Validate
// reads the files before NATS and New again, as it is given them: a file
// changed in between is what the worker runs with, and was checked as
// it was read.
func (cfg Config) open(log *slog.Logger) (cur *rules.Current, seals, matchSeals *events.Seals, err error) {
	cur, err = rules.Open(cfg.RulesFile, log)
	var sealErr, matchSealErr error
	if cfg.SealKeyFile != "" {
		seals, sealErr = events.LoadSeals(cfg.SealKeyFile)
	}
	if cfg.MatchSealKeyFile != "" {
		if matchSeals, matchSealErr = events.LoadSeals(cfg.MatchSealKeyFile); matchSealErr != nil {
			matchSealErr = fmt.Errorf("match %w", matchSealErr)
		}
		if matchSeals.SharesKeyWith(seals) {
			// The frontends hold the seal keys: with one of them they
			// could seal a match of their own making.
			matchSealErr = fmt.Errorf("match seal key file %s holds a key of -seal-key-file %s, which the frontends hold: give the matchers a key of their own", cfg.MatchSealKeyFile, cfg.SealKeyFile)
		}
	}
	if err = errors.Join(cfg.Tiers.Validate(), err, sealErr, matchSealErr); err != nil {
		return nil, nil, nil, fmt.Errorf("matcher config: %w", err)
	}
	return cur, seals, matchSeals, nil
}

// New returns a worker. reg receives its metrics.
func New(cfg Config, js jetstream.JetStream, subj events.Subjects, log *slog.Logger, reg prometheus.Registerer) (*Worker, error) {
	cfg.setDefaults()
	cur, seals, matchSeals, err := cfg.open(log)
	if err != nil {
		return nil, err
	}
	w := &Worker{
		cfg: cfg, rules: cur, js: js, nc: js.Conn(), subj: subj, log: log.With("worker", cfg.WorkerID),
		pub: events.NewPublisher(js, subj), met: newMetrics(reg), now: time.Now, acks: acker{nc: js.Conn()},
		runners: map[events.Shard]*runner{}, shardSubjects: map[string]bool{}, strayCursor: map[string]uint64{},
		matchSeals: matchSeals,
	}
	w.in = &intake{
		subj: subj, regions: cfg.Regions, tiers: cfg.Tiers,
		pub: w.pub, met: w.met, now: w.clock, timeout: cfg.PublishTimeout, seals: seals, fresh: sealFresh,
	}
	for _, s := range w.Shards() {
		w.shardSubjects[subj.Ticket(s.Region, s.Tier)] = true
	}
	return w, nil
}

// clock is the time by the worker's clock (now), read when it is called,
// so every part that was handed it keeps to the one clock.
func (w *Worker) clock() time.Time { return w.now() }

// ID is the worker's name.
func (w *Worker) ID() string { return w.cfg.WorkerID }

// Shards is what the worker's regions and tiers make.
func (w *Worker) Shards() []events.Shard {
	return events.Topology{Regions: w.cfg.Regions, Tiers: w.cfg.Tiers}.Shards()
}

// bindState binds the worker to the buckets it keeps its decisions in: it
// gives them to the intake and makes the match state, both shared by
// every runner.
func (w *Worker) bindState(ctx context.Context) error {
	claims, err := events.NewClaims(ctx, w.js, w.subj)
	if err != nil {
		return err
	}
	// players keeps each player's one live ticket (intake.take).
	players, err := events.NewPlayers(ctx, w.js, w.subj, claims)
	if err != nil {
		return err
	}
	// matches keeps the records of matches whose claims do not carry
	// them, for recovery (recoverer.matchOf), and of those whose rooms
	// take backfill, for the allocator; decisions, in the same
	// bucket, each match's one decision. Read from the leader: a match
	// record not found counts as decided (expired), and a replica behind
	// a heal would say so of one just written.
	matches, err := events.BindLeaderGets(ctx, w.js, w.subj.MatchesBucket())
	if err != nil {
		return fmt.Errorf("matches bucket: %w", err)
	}
	decisions, err := events.NewDecisions(ctx, w.js, w.subj)
	if err != nil {
		return err
	}
	// New made the intake without buckets: a stray sweep needs none until
	// it meets a ticket that names its players, so a worker only made,
	// not bound, can sweep strays (a test does).
	w.in.claims, w.in.players = claims, players
	w.in.superseder = superseder{met: w.met, log: w.log, tell: w.pub.TellSuperseded(w.cfg.Regions, func(err error) {
		w.log.Warn("the claim rules the superseded ticket out", "err", err)
	})}
	w.state = &matchState{
		matches: matches, recordAll: w.cfg.MatchRecords || !claims.CarriesMatch(), matchSeals: w.matchSeals, unverified: w.met.unverifiedMatches,
		decisions: decisions, claims: claims, players: players,
		undo: undoer{claims: claims, superseder: w.in.superseder}, pub: w.pub, timeout: w.cfg.PublishTimeout,
	}
	w.outbox = newOutbox(w.state, w.met, w.log, w.nc, w.clock)
	return nil
}

// Bind binds the worker to its buckets and makes its shard manager,
// waiting out NATS silent meanwhile (a restart during a partition:
// service.Retry) instead of ending. The process says it is ready once
// Bind returns; Run calls it if it was not called.
func (w *Worker) Bind(ctx context.Context) error {
	if w.mgr != nil {
		return nil
	}
	return service.Retry(ctx, w.js.Conn(), w.log, "bind the buckets", func(ctx context.Context) error {
		if err := w.bindState(ctx); err != nil {
			return err
		}
		var err error
		w.mgr, err = shard.New(ctx, w.js, w.subj, w.cfg.WorkerID, w.Shards(), w, w.log)
		return err
	})
}

// Run takes tickets in and owns shards until ctx ends; then it hands its
// shards back (their tickets are redelivered to the next owner at once).
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Bind(ctx); err != nil {
		return err
	}
	mgr := w.mgr
	sub, err := w.nc.Subscribe(w.subj.AllCancels(), w.routeNotice)
	if err != nil {
		return fmt.Errorf("subscribe to cancels: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	w.log.Info("matcher worker running", "regions", w.cfg.Regions.String(), "tiers", w.cfg.Tiers.String())
	// The outbox ends after the shards are handed back, so that its last
	// try covers what their runners handed it then.
	octx, stopOutbox := context.WithCancel(context.WithoutCancel(ctx))
	outboxDone := make(chan struct{})
	go func() { w.outbox.run(octx); close(outboxDone) }()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.strays(gctx) })
	g.Go(func() error { w.rules.Watch(gctx, w.cfg.RulesReload); return nil })
	g.Go(func() error { return mgr.Run(gctx) })
	err = g.Wait()
	stopOutbox()
	<-outboxDone
	w.in.rejecting.Wait() // every rejected ticket dead-lettered or naked
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

// routeNotice hands what a cancels subject carries to the worker's
// runners. A cancel notice goes to every runner: the ticket waits in its
// own shard, and copies of it may wait as visitors in other regions'
// shards of its tier and in its region's neighbouring tiers (offer.go),
// any of which this worker may hold. The notice names the ticket's own
// shard only, and a visitor copy that outlived it would wait,
// unmatchable (its claim is taken), until it expires. A matched notice
// (events.MatchedNotice) goes only to the runners of shards that may hold
// a copy of its ticket (mayHoldCopy), which remember it a while for a
// copy still to come.
func (w *Worker) routeNotice(msg *nats.Msg) {
	c, matched, err := events.DecodeNotice(msg.Data)
	if err != nil {
		w.log.Warn("bad notice ignored", "subject", msg.Subject, "err", err)
		return
	}
	w.mu.Lock()
	rs := make([]*runner, 0, len(w.runners))
	for s, r := range w.runners {
		if matched == nil || w.mayHoldCopy(s, *matched) {
			rs = append(rs, r)
		}
	}
	w.mu.Unlock()
	for _, r := range rs {
		if matched != nil {
			r.queueMatchedNotice(*matched)
			continue
		}
		r.cancel(c.TicketID)
	}
}

// mayHoldCopy reports whether shard s may hold a copy of n's ticket: s is
// of the ticket's own tier (its home shard, or another region's, which it
// was offered to), or of a neighbouring tier in its own region (which it
// was offered to across the bound). What n leaves out (see
// events.MatchedNotice) counts as any.
func (w *Worker) mayHoldCopy(s events.Shard, n events.MatchedNotice) bool {
	if n.HomeTier == "" || s.Tier == n.HomeTier {
		return true
	}
	if n.HomeRegion != "" && s.Region != n.HomeRegion {
		return false
	}
	below, above := neighbours(w.cfg.Tiers, n.HomeTier)
	return s.Tier == below.tier || s.Tier == above.tier
}

// superseder ends a ticket a newer one of its players replaced.
type superseder struct {
	tell events.SupersededFunc
	met  *metrics
	log  *slog.Logger
}

// superseded tells the players of old that their ticket ended, superseded
// by their ticket newer, and asks the shards of old's tier in every region
// to drop it (events.Publisher.TellSuperseded).
func (s superseder) superseded(ctx context.Context, old events.LiveTicket, newer string) error {
	if err := s.tell(ctx, old, newer); err != nil {
		return err
	}
	s.met.tickets.WithLabelValues("superseded").Inc()
	s.log.Info("ticket superseded", "ticket_id", old.TicketID, "by", newer)
	return nil
}
