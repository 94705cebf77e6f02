// Package matcher pools the tickets of every shard and forms matches.
//
// Concurrency: one goroutine, the owner (Run), holds the pool and does all
// matching. The JetStream consume callback only hands messages to the owner
// over a channel, so the pool needs no lock and matching is serial per
// process: two tickets can never be put in two matches by a race inside a
// matcher.
//
// Delivery: a waiting ticket stays unacked in the pool; the owner sends
// InProgress for it every third of AckWait. A ticket is acked only after
// what ends it is stored: the match on the allocations stream, its expired
// result, or its dead letter.
//
// Outcomes: before a match is published its tickets are claimed in the
// claims bucket (events.Claims), all or none; a ticket is expired or
// superseded only through a claim too. A ticket the frontend cancelled
// (its claim says so) is dropped, never matched: the cancel notice on core
// NATS removes it from the pool at once, and the claim catches a notice
// that was lost. A matcher that dies leaves its tickets unacked
// and JetStream redelivers them to another matcher after AckWait. On a clean
// shutdown the matcher naks its pool so the tickets move at once.
//
// This walking skeleton runs one active matcher per deployment: with two,
// the consumer splits a shard's tickets between them. Shard ownership across
// workers is the matcher issue's work (see the README's roadmap).
package matcher

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/modes"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// Source is the name the matcher signs its dead letters with.
const Source = "matcher"

// Config of a matcher.
type Config struct {
	// Regions and Tiers a ticket's subject must name.
	Regions events.Regions
	Tiers   events.Tiers
	// ModesFile is a JSON list of modes; empty means modes.Defaults.
	ModesFile string
	// Tick is how often expiry is checked (default 1 s).
	Tick time.Duration
	// PublishTimeout bounds each publish (default 5 s).
	PublishTimeout time.Duration
}

// RegisterFlags adds the matcher's flags to fs, with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Regions = append(events.Regions(nil), events.DefaultRegions...)
	c.Tiers = append(events.Tiers(nil), events.DefaultTiers...)
	fs.Var(&c.Regions, "regions", "regions served, comma-separated")
	fs.Var(&c.Tiers, "tiers", "skill tiers as name:min_skill, increasing")
	fs.StringVar(&c.ModesFile, "modes-file", "", "JSON file of game modes (default: built-in 1v1, 2v2, 5v5, ffa)")
	fs.DurationVar(&c.Tick, "tick", time.Second, "how often waiting tickets are checked for expiry")
	fs.DurationVar(&c.PublishTimeout, "publish-timeout", 5*time.Second, "bound on each publish to JetStream")
}

func (c *Config) setDefaults() {
	if len(c.Regions) == 0 {
		c.Regions = events.DefaultRegions
	}
	if len(c.Tiers) == 0 {
		c.Tiers = events.DefaultTiers
	}
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 5 * time.Second
	}
}

// Metrics the matcher exports.
type metrics struct {
	tickets  *prometheus.CounterVec
	matches  *prometheus.CounterVec
	waiting  prometheus.Gauge
	waitTime prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		tickets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quickmatch_matcher_tickets_total", Help: "Tickets seen by outcome.",
		}, []string{"outcome"}),
		matches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quickmatch_matcher_matches_total", Help: "Matches formed by mode.",
		}, []string{"mode"}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "quickmatch_matcher_waiting_tickets", Help: "Tickets waiting in this matcher's pool.",
		}),
		waitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "quickmatch_matcher_wait_seconds", Help: "Wait from ticket creation to match.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
		}),
	}
	reg.MustRegister(m.tickets, m.matches, m.waiting, m.waitTime)
	return m
}

// Matcher forms matches from tickets.
type Matcher struct {
	cfg    Config
	modes  modes.Set
	js     jetstream.JetStream
	subj   events.Subjects
	pub    *events.Publisher
	log    *slog.Logger
	met    *metrics
	pool   *pool.Pool
	claims *events.Claims
	now    func() time.Time
}

// New returns a matcher. reg receives its metrics.
func New(cfg Config, js jetstream.JetStream, subj events.Subjects, log *slog.Logger, reg prometheus.Registerer) (*Matcher, error) {
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
	return &Matcher{
		cfg: cfg, modes: set, js: js, subj: subj, log: log,
		pub: events.NewPublisher(js, subj), met: newMetrics(reg),
		pool: pool.New(), now: time.Now,
	}, nil
}

// Run consumes tickets until ctx ends. It returns nil on a clean stop.
func (m *Matcher) Run(ctx context.Context) error {
	claims, err := events.NewClaims(ctx, m.js, m.subj)
	if err != nil {
		return err
	}
	m.claims = claims
	cons, err := m.js.Consumer(ctx, m.subj.TicketsStream(), events.ConsumerMatcher)
	if err != nil {
		return fmt.Errorf("bind matcher consumer: %w", err)
	}
	inbox := make(chan jetstream.Msg, 256)
	stop := make(chan struct{})
	cancels := make(chan events.Cancel, 256)
	csub, err := m.js.Conn().Subscribe(m.subj.AllCancels(), func(msg *nats.Msg) {
		c, err := events.DecodeCancel(msg.Data)
		if err != nil {
			m.log.Warn("bad cancel notice ignored", "subject", msg.Subject, "err", err)
			return
		}
		select {
		case cancels <- c:
		case <-stop:
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe to cancels: %w", err)
	}
	defer func() { _ = csub.Unsubscribe() }()
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		select {
		case inbox <- msg:
		case <-stop:
			// Stopping: hand it back. Until the subscription is closed the
			// server may offer it to us again; after that, to another matcher.
			_ = msg.Nak()
		}
	}, jetstream.PullMaxMessages(256), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		m.log.Warn("consume", "err", err)
	}))
	if err != nil {
		return fmt.Errorf("consume tickets: %w", err)
	}
	tick := time.NewTicker(m.cfg.Tick)
	defer tick.Stop()
	progress := time.NewTicker(events.MatcherAckWait / 3)
	defer progress.Stop()
	m.log.Info("matcher running", "regions", m.cfg.Regions.String(), "tiers", m.cfg.Tiers.String())
	for {
		select {
		case <-ctx.Done():
			// Stop pulling and wait until the subscription is gone, so that
			// the tickets nakked below are redelivered to another matcher,
			// not to this one's closing subscription.
			close(stop)
			cc.Stop()
			<-cc.Closed()
			m.release()
			return nil
		case msg := <-inbox:
			m.handle(ctx, msg)
		case c := <-cancels:
			m.dropCancelled(c.TicketID)
		case <-tick.C:
			m.expire(ctx)
		case <-progress.C:
			m.pool.Each(func(e *pool.Entry) { _ = e.Handle.(jetstream.Msg).InProgress() })
		}
	}
}

// dropCancelled removes a ticket the frontend cancelled. The frontend
// claimed it and told the player before it sent the notice, so the ticket
// is acked with nothing more to say.
func (m *Matcher) dropCancelled(ticketID string) {
	e, ok := m.pool.Remove(ticketID)
	if !ok {
		return
	}
	_ = e.Handle.(jetstream.Msg).Ack()
	m.met.tickets.WithLabelValues(string(events.StatusCancelled)).Inc()
	m.met.waiting.Set(float64(m.pool.Len()))
	m.log.Info("cancelled ticket dropped", "ticket_id", ticketID)
}

// release hands every pooled ticket back to JetStream for another matcher.
func (m *Matcher) release() {
	n := 0
	m.pool.Each(func(e *pool.Entry) {
		if err := e.Handle.(jetstream.Msg).Nak(); err == nil {
			n++
		}
	})
	m.log.Info("matcher stopped; pool released", "tickets", n)
}

// handle takes one ticket message into the pool, or ends it.
func (m *Matcher) handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		m.log.Error("ticket without metadata; skipped", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	// The ticket's correlation and trace context go on every log line and
	// every message published for it (the match carries the context of the
	// ticket that completed it).
	tmeta := events.MetaFromHeader(msg.Headers())
	ctx = events.WithMeta(ctx, tmeta)
	log := m.log.With("subject", msg.Subject(), "seq", meta.Sequence.Stream, "correlation_id", tmeta.CorrelationID)
	t, key, err := m.decode(msg, meta)
	if err != nil {
		m.deadLetter(ctx, log, msg, meta, t, err)
		return
	}
	log = log.With("ticket_id", t.TicketID)
	if e, ok := m.pool.Get(t.TicketID); ok {
		// A redelivery of a ticket we hold (or a duplicate publish that the
		// duplicate window missed): keep one, ack the other.
		if old := e.Handle.(jetstream.Msg); old != msg {
			oldMeta, _ := old.Metadata()
			if oldMeta != nil && oldMeta.Sequence.Stream == meta.Sequence.Stream {
				e.Handle = msg
				return
			}
		}
		m.met.tickets.WithLabelValues("duplicate").Inc()
		log.Info("duplicate ticket dropped")
		_ = msg.Ack()
		return
	}
	for _, p := range t.Players() {
		if other, ok := m.pool.WaitingTicketOf(p); ok {
			// The newer ticket of a player wins: a client that asks again
			// (after a reload, say) must not be matched twice.
			m.supersede(ctx, log, other, t.TicketID)
		}
	}
	mode := m.modes[t.Mode]
	if m.now().Sub(t.CreatedAt) >= time.Duration(mode.MaxWait) {
		m.endTickets(ctx, log, []*pool.Entry{entryOf(t, msg)}, events.StatusExpired, events.OwnerExpired, fmt.Sprintf("no match within %s", time.Duration(mode.MaxWait)))
		return
	}
	m.pool.Add(key, entryOf(t, msg))
	m.met.tickets.WithLabelValues("pooled").Inc()
	m.tryMatch(ctx, log, key, mode)
	m.met.waiting.Set(float64(m.pool.Len()))
}

func entryOf(t events.Ticket, msg jetstream.Msg) *pool.Entry {
	return &pool.Entry{TicketID: t.TicketID, Players: t.Players(), Skill: t.Skill, CreatedAt: t.CreatedAt, Handle: msg}
}

// decode checks a ticket message completely and names what is wrong. When
// the ticket itself decoded but breaks a rule (wrong tier, unknown mode, a
// party too large), it is returned with the error, so its players can be
// told.
func (m *Matcher) decode(msg jetstream.Msg, meta *jetstream.MsgMetadata) (events.Ticket, pool.Key, error) {
	region, tier, err := m.subj.ParseTicket(msg.Subject())
	if err != nil {
		return events.Ticket{}, pool.Key{}, err
	}
	t, err := events.DecodeTicket(msg.Data())
	if err != nil {
		return events.Ticket{}, pool.Key{}, err
	}
	if t.TicketID == "" {
		t.TicketID = events.DeriveTicketID(msg.Subject(), meta.Sequence.Stream, meta.Timestamp, msg.Data())
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = meta.Timestamp
	}
	if err := errors.Join(t.CheckShard(region, tier, m.cfg.Regions, m.cfg.Tiers), t.CheckTime(m.now())); err != nil {
		return t, pool.Key{}, err
	}
	mode, ok := m.modes[t.Mode]
	if !ok {
		return t, pool.Key{}, &events.ValidationError{Kind: "ticket", Fields: []events.FieldError{{Field: "mode", Reason: fmt.Sprintf("unknown mode %q", t.Mode)}}}
	}
	if n := len(t.Players()); n > mode.TeamSize {
		return t, pool.Key{}, &events.ValidationError{Kind: "ticket", Fields: []events.FieldError{{Field: "party", Reason: fmt.Sprintf("%d players do not fit a team of %d in mode %q", n, mode.TeamSize, mode.Name)}}}
	}
	return t, pool.Key{Region: region, Tier: tier, Mode: t.Mode}, nil
}

func (m *Matcher) tryMatch(ctx context.Context, log *slog.Logger, key pool.Key, mode modes.Mode) {
	// Each pass forms at most one match; a pass whose claims fail drops the
	// tickets decided elsewhere and tries again with what is left.
	for {
		teams := m.pool.TakeMatch(key, mode.Teams, mode.TeamSize)
		if teams == nil {
			return
		}
		if !m.formMatch(ctx, log, key, mode, teams) {
			return
		}
	}
}

// formMatch claims, publishes and acks one match. It returns true if the
// pool should be tried again (some tickets turned out to be decided
// elsewhere and were dropped).
func (m *Matcher) formMatch(ctx context.Context, log *slog.Logger, key pool.Key, mode modes.Mode, teams [][]*pool.Entry) bool {
	now := m.now()
	match := events.Match{Mode: mode.Name, Region: key.Region, Tier: key.Tier, CreatedAt: now.UTC()}
	var ids []string
	var all []*pool.Entry
	for team, entries := range teams {
		for _, e := range entries {
			ids = append(ids, e.TicketID)
			all = append(all, e)
			match.Tickets = append(match.Tickets, events.MatchTicket{TicketID: e.TicketID, Players: e.Players, Team: team, CreatedAt: e.CreatedAt.UTC()})
		}
	}
	match.MatchID = events.MatchID(ids)
	log = log.With("match_id", match.MatchID)

	pctx, cancel := context.WithTimeout(ctx, m.cfg.PublishTimeout)
	defer cancel()
	lost, err := m.claims.ClaimAll(pctx, ids, events.MatchOwner(match.MatchID))
	if err != nil {
		log.Error("claim match tickets; tickets kept", "err", err)
		m.pool.Put(key, all)
		return false
	}
	if len(lost) > 0 {
		var keep []*pool.Entry
		for _, e := range all {
			if owner, gone := lost[e.TicketID]; gone {
				// Decided elsewhere (cancelled, or matched by another
				// worker): its outcome was published by whoever won.
				_ = e.Handle.(jetstream.Msg).Ack()
				m.met.tickets.WithLabelValues("decided_elsewhere").Inc()
				log.Info("ticket already decided; dropped", "ticket_id", e.TicketID, "owner", owner)
				continue
			}
			keep = append(keep, e)
		}
		m.pool.Put(key, keep)
		return true
	}
	if err := m.publishMatch(pctx, match); err != nil {
		// The tickets stay claimed for this match id and go back to the
		// pool: the next attempt re-forms the same match (same tickets,
		// same id), which the claims accept and the stream deduplicates.
		log.Error("publish match; tickets kept", "err", err)
		m.pool.Put(key, all)
		return false
	}
	for _, e := range all {
		if err := e.Handle.(jetstream.Msg).DoubleAck(ctx); err != nil {
			log.Warn("ack matched ticket", "ticket_id", e.TicketID, "err", err)
		}
		m.met.waitTime.Observe(now.Sub(e.CreatedAt).Seconds())
	}
	m.met.tickets.WithLabelValues("matched").Add(float64(len(all)))
	m.met.matches.WithLabelValues(mode.Name).Inc()
	log.Info("match formed", "mode", mode.Name, "region", key.Region, "tier", key.Tier, "tickets", len(all))
	return false
}

// publishMatch tells every player they are matched, then hands the match to
// the allocator. The match id is the message id, so a retry is stored once.
func (m *Matcher) publishMatch(pctx context.Context, match events.Match) error {
	for _, t := range match.Tickets {
		for _, p := range t.Players {
			r := events.Result{TicketID: t.TicketID, PlayerID: p, Status: events.StatusMatched, MatchID: match.MatchID}
			if err := m.pub.Result(pctx, r); err != nil {
				return err
			}
		}
	}
	return m.pub.Match(pctx, match)
}

// expire ends every ticket that waited past its mode's limit.
func (m *Matcher) expire(ctx context.Context) {
	maxWait := func(k pool.Key) time.Duration { return time.Duration(m.modes[k.Mode].MaxWait) }
	m.pool.Expired(m.now(), maxWait, func(k pool.Key, e *pool.Entry) {
		m.endTickets(ctx, m.log.With("ticket_id", e.TicketID), []*pool.Entry{e}, events.StatusExpired, events.OwnerExpired, fmt.Sprintf("no match within %s", maxWait(k)))
	})
	m.met.waiting.Set(float64(m.pool.Len()))
}

// supersede ends a player's older waiting ticket in favour of a newer one.
func (m *Matcher) supersede(ctx context.Context, log *slog.Logger, oldTicket, newTicket string) {
	e, ok := m.pool.Remove(oldTicket)
	if !ok {
		return
	}
	m.endTickets(ctx, log, []*pool.Entry{e}, events.StatusCancelled, events.OwnerSuperseded, "superseded by ticket "+newTicket)
}

// endTickets claims each ticket for owner, publishes a terminal result to
// each player and acks. A ticket whose claim another owner holds is acked
// silently: that owner has told the player. If the claim or the result
// cannot be stored, the ticket is nakked with a delay, so the player is
// told later rather than never.
func (m *Matcher) endTickets(ctx context.Context, log *slog.Logger, entries []*pool.Entry, status events.Status, owner, reason string) {
	pctx, cancel := context.WithTimeout(ctx, m.cfg.PublishTimeout)
	defer cancel()
	for _, e := range entries {
		msg := e.Handle.(jetstream.Msg)
		won, cur, err := m.claims.Claim(pctx, e.TicketID, owner)
		if err != nil {
			log.Error("claim ticket; will retry", "ticket_id", e.TicketID, "err", err)
			_ = msg.NakWithDelay(time.Second)
			continue
		}
		if !won {
			_ = msg.Ack()
			log.Info("ticket already decided; dropped", "ticket_id", e.TicketID, "owner", cur)
			continue
		}
		for _, p := range e.Players {
			if err = m.pub.Result(pctx, events.Result{TicketID: e.TicketID, PlayerID: p, Status: status, Reason: reason}); err != nil {
				break
			}
		}
		if err != nil {
			log.Error("publish result; ticket will be retried", "status", status, "err", err)
			_ = msg.NakWithDelay(time.Second)
			continue
		}
		_ = msg.Ack()
		m.met.tickets.WithLabelValues(string(status)).Inc()
		log.Info("ticket ended", "status", status, "reason", reason)
	}
}

// deadLetter records a ticket that can never be matched and terminates it.
// If the ticket named its players (t is set), they are told it failed and
// why, through a claim like every other outcome.
func (m *Matcher) deadLetter(ctx context.Context, log *slog.Logger, msg jetstream.Msg, meta *jetstream.MsgMetadata, t events.Ticket, cause error) {
	pctx, cancel := context.WithTimeout(ctx, m.cfg.PublishTimeout)
	defer cancel()
	dl := events.NewDeadLetter(Source, msg.Subject(), meta.Sequence.Stream, msg.Data(), cause, m.now())
	if err := m.pub.DeadLetter(pctx, dl); err != nil {
		log.Error("publish dead letter; ticket will be retried", "reason", cause, "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	m.met.tickets.WithLabelValues("dead_letter").Inc()
	log.Warn("ticket dead-lettered", "reason", cause)
	if t.TicketID != "" {
		won, _, err := m.claims.Claim(pctx, t.TicketID, events.OwnerFailed)
		if err != nil {
			log.Error("claim rejected ticket; will retry", "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		for _, p := range t.Players() {
			if !won {
				break
			}
			r := events.Result{TicketID: t.TicketID, PlayerID: p, Status: events.StatusFailed, Reason: "ticket rejected: " + cause.Error()}
			if err := m.pub.Result(pctx, r); err != nil {
				log.Error("tell player of rejected ticket; will retry", "player", p, "err", err)
				_ = msg.NakWithDelay(time.Second)
				return
			}
		}
	}
	_ = msg.TermWithReason(dl.Reason)
}
