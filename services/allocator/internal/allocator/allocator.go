// Package allocator turns formed matches into game-server assignments.
//
// Requests arrive through a watermill router bound, with watermill-nats, to
// the allocator push consumer that events.Provision created. The subscriber
// never creates or deletes a consumer, acks explicitly (ManualAck), and each
// of its SubscribersCount subscriptions handles one match at a time.
//
// For each match the handler asks the Backend for a server, signs a join
// token per player and publishes each player's assignment on their result
// subject. Transient failures are retried with backoff inside the handler
// (watermill's Retry middleware); what still fails is a permanent failure:
// every player gets a "failed" result with the reason, the match is
// dead-lettered, and the message is acked. So a player always hears back.
package allocator

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
)

// Source is the name the allocator signs its dead letters with.
const Source = "allocator"

// ErrNoCapacity is returned by a Backend that has no server for a match.
var ErrNoCapacity = errors.New("no game server capacity")

// Server is an allocated game server.
type Server struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	// Cluster names where the server runs (multi-cluster backends).
	Cluster string `json:"cluster,omitempty"`
}

// Backend finds a game server for a match. It must be idempotent: asked
// again for the same match id, it returns the same server.
type Backend interface {
	Allocate(ctx context.Context, m events.Match) (Server, error)
}

// Config of the allocator.
type Config struct {
	// JoinKey signs join tokens (required): an Ed25519 private key that
	// only allocators hold; the game servers verify with its public key.
	JoinKey ed25519.PrivateKey
	// TokenTTL is how long a join token admits its player.
	TokenTTL time.Duration
	// Concurrency is how many matches are allocated at once.
	Concurrency int
	// RetryDeadline bounds retries of one match before it fails.
	RetryDeadline time.Duration
	// CloseTimeout is how long in-flight matches may finish on shutdown.
	CloseTimeout time.Duration
	// NakDelay is when a match that was not settled (another request is
	// allocating it, this allocator is stopping, NATS is away) comes back.
	// Its deliveries (events.AllocatorMaxDeliver) must outlast a stale
	// claim (events.AllocatorAckWait). Default 5 s.
	NakDelay time.Duration
	// Requeue, when no game server can be found in time, puts the match's
	// tickets back in the queue with their original wait, instead of
	// telling the players it failed.
	Requeue bool
}

func (c *Config) setDefaults() {
	if c.NakDelay <= 0 {
		c.NakDelay = 5 * time.Second
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = 10 * time.Minute
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.RetryDeadline <= 0 {
		c.RetryDeadline = 10 * time.Second
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 10 * time.Second
	}
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if len(c.JoinKey) != ed25519.PrivateKeySize {
		errs = append(errs, fmt.Errorf("join key is %d bytes, want an Ed25519 private key (%d)", len(c.JoinKey), ed25519.PrivateKeySize))
	}
	if c.RetryDeadline >= events.AllocatorAckWait {
		errs = append(errs, fmt.Errorf("retry deadline %s must be below the consumer's AckWait %s", c.RetryDeadline, events.AllocatorAckWait))
	}
	return errors.Join(errs...)
}

// Allocator runs the request router.
type Allocator struct {
	cfg     Config
	nc      *nats.Conn
	subj    events.Subjects
	pub     *events.Publisher
	backend Backend
	js      jetstream.JetStream
	records jetstream.KeyValue
	claims  *events.Claims
	log     *slog.Logger
	met     *metrics
	now     func() time.Time
	signer  *jointoken.Signer
}

type metrics struct {
	latency  prometheus.Histogram
	outcomes *prometheus.CounterVec
	retries  prometheus.Counter
}

// New returns an allocator; reg (may be nil) receives its metrics.
func New(cfg Config, nc *nats.Conn, js jetstream.JetStream, subj events.Subjects, backend Backend, log *slog.Logger, reg ...prometheus.Registerer) (*Allocator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("allocator config: %w", err)
	}
	met := &metrics{
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "quickmatch_allocator_allocation_seconds", Help: "Time to allocate a match, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quickmatch_allocator_matches_total", Help: "Matches by outcome: assigned, reused (a repeat), failed_<reason>, requeued.",
		}, []string{"outcome"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quickmatch_allocator_retries_total", Help: "Retries of allocations after an error.",
		}),
	}
	signer, err := jointoken.NewSigner(cfg.JoinKey)
	if err != nil {
		return nil, fmt.Errorf("allocator config: %w", err)
	}
	for _, r := range reg {
		r.MustRegister(met.latency, met.outcomes, met.retries)
	}
	log.Info("join tokens signed with key", "key_id", signer.KeyID())
	return &Allocator{cfg: cfg, nc: nc, js: js, subj: subj, pub: events.NewPublisher(js, subj), backend: backend, log: log, met: met, now: time.Now, signer: signer}, nil
}

// Run serves allocation requests until ctx ends.
func (a *Allocator) Run(ctx context.Context) error {
	records, err := a.js.KeyValue(ctx, a.subj.AllocationsBucket())
	if err != nil {
		return fmt.Errorf("allocations bucket: %w", err)
	}
	a.records = records
	if a.claims, err = events.NewClaims(ctx, a.js, a.subj); err != nil {
		return err
	}
	wlog := watermill.NewSlogLogger(a.log)
	sub, err := wmnats.NewSubscriberWithNatsConn(a.nc, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:      unmarshaler{},
		SubscribersCount: a.cfg.Concurrency,
		QueueGroupPrefix: events.AllocatorDeliverGroup,
		// The handler retries within RetryDeadline; past AckWait the
		// server would redeliver anyway.
		AckWaitTimeout: events.AllocatorAckWait,
		NakDelay:       wmnats.NewStaticDelay(a.cfg.NakDelay),
		CloseTimeout:   a.cfg.CloseTimeout,
		JetStream: wmnats.JetStreamConfig{
			// Bind to the provisioned consumer; never create (and so never
			// delete) one. ManualAck stops nats.go from acking on receipt.
			SubscribeOptions: []nats.SubOpt{
				nats.Bind(a.subj.AllocationsStream(), events.ConsumerAllocator),
				nats.ManualAck(),
			},
			DurablePrefix: events.ConsumerAllocator,
			// The ack goes without waiting for the server's answer: by
			// then the match's record and results are stored, so an ack
			// lost on the way only brings the match back after AckWait,
			// and its record makes that delivery repeat the same results
			// (the same message ids: stored once). A waited ack held one
			// of the Concurrency subscribers for a round trip per match.
			AckAsync: true,
		},
	}, wlog)
	if err != nil {
		return fmt.Errorf("allocation subscriber: %w", err)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: a.cfg.CloseTimeout}, wlog)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	retry := middleware.Retry{
		MaxRetries:      20,
		InitialInterval: 100 * time.Millisecond,
		MaxInterval:     2 * time.Second,
		Multiplier:      2,
		MaxElapsedTime:  a.cfg.RetryDeadline,
		Logger:          wlog,
		ShouldRetry:     func(p middleware.RetryParams) bool { return !errors.Is(p.Err, events.ErrInvalid) },
		OnRetryHook:     func(int, time.Duration) { a.met.retries.Inc() },
	}
	// Order: the outermost middleware sees what is left after the inner
	// ones; giveUp turns a failure that survived every retry into results
	// and a dead letter, so the router only ever acks.
	router.AddMiddleware(middleware.CorrelationID, a.giveUp, retry.Middleware, middleware.Recoverer)
	router.AddConsumerHandler("allocate", a.subj.AllAllocations(), sub, a.handle)
	return router.Run(ctx)
}

// handle allocates one match. A returned error is retried by the middleware.
func (a *Allocator) handle(msg *message.Message) error {
	m, err := events.DecodeMatch(msg.Payload)
	if err != nil {
		return err
	}
	ctx := events.WithMeta(msg.Context(), events.Meta{CorrelationID: middleware.MessageCorrelationID(msg), TraceParent: msg.Metadata.Get(events.HeaderTraceParent)})
	start := a.now()
	srv, reused, err := a.allocateOnce(ctx, m)
	if err != nil {
		return err
	}
	a.met.latency.Observe(a.now().Sub(start).Seconds())
	if reused {
		a.met.outcomes.WithLabelValues("reused").Inc()
	} else {
		a.met.outcomes.WithLabelValues("assigned").Inc()
	}
	expires := a.now().Add(a.cfg.TokenTTL)
	var rs []events.Result
	for _, t := range m.Tickets {
		for _, p := range t.Players {
			token, err := a.signer.Sign(jointoken.Grant{MatchID: m.MatchID, PlayerID: p, Expires: expires})
			if err != nil {
				return fmt.Errorf("match %s: %w", m.MatchID, err)
			}
			as := &events.Assignment{
				Server: srv.Name, Address: srv.Address, Port: srv.Port,
				URL:  playURL(srv, m.MatchID, token),
				Room: m.MatchID, JoinToken: token, MatchID: m.MatchID,
			}
			rs = append(rs, events.Result{TicketID: t.TicketID, PlayerID: p, Status: events.StatusAssigned, MatchID: m.MatchID, Assignment: as})
		}
	}
	if err := a.pub.Results(ctx, rs); err != nil { // all at once: one round trip
		return fmt.Errorf("match %s: %w", m.MatchID, err)
	}
	a.log.Info("match assigned", "match_id", m.MatchID, "server", srv.Name, "players", len(m.Players()), "correlation_id", middleware.MessageCorrelationID(msg))
	return nil
}

// record is what the allocations bucket keeps per match: the server once
// allocated, or, while an allocation is under way, when it began.
type record struct {
	Server  *Server `json:"server,omitempty"`
	Pending int64   `json:"pending,omitempty"` // Unix ms
	// Failed is set, by compare-and-set, before the players are told the
	// match failed: from then on no request allocates it, so a match
	// never ends both failed and assigned.
	Failed bool `json:"failed,omitempty"`
}

// errFailedBefore: the match's record says it failed; its players were
// (or are being) told so.
var errFailedBefore = fmt.Errorf("%w: this match failed before", events.ErrInvalid)

// errInProgress is retried: another request for the match is allocating.
var errInProgress = errors.New("another request for this match is being allocated")

// allocateOnce gives a match one game server however often, and however
// concurrently, its request comes. The match's record is claimed first
// (created as pending, compare-and-set), so a concurrent request waits and
// then reuses the server; the server is written into the record right
// after the backend gives it. A pending record older than the consumer's
// AckWait belongs to an allocator that died, and is taken over.
func (a *Allocator) allocateOnce(ctx context.Context, m events.Match) (Server, bool, error) {
	key := m.MatchID
	pending := func() []byte {
		b, _ := json.Marshal(record{Pending: a.now().UnixMilli()}) // always encodes
		return b
	}
	var rev uint64
	for rev == 0 {
		// Create first: a match's first request (nearly all of them) takes
		// the record in one round trip; only a repeat reads it.
		var err error
		rev, err = a.records.Create(ctx, key, pending())
		if err == nil {
			break
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return Server{}, false, fmt.Errorf("allocation record of %s: %w", key, err)
		}
		e, err := a.records.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			continue // given back just now: create it again
		case err != nil:
			return Server{}, false, fmt.Errorf("allocation record of %s: %w", key, err)
		}
		var r record
		_ = json.Unmarshal(e.Value(), &r)
		if r.Failed {
			return Server{}, false, fmt.Errorf("match %s: %w", key, errFailedBefore)
		}
		if r.Server != nil {
			a.log.Info("match allocated before; same server", "match_id", key, "server", r.Server.Name)
			return *r.Server, true, nil
		}
		if a.now().Sub(time.UnixMilli(r.Pending)) < events.AllocatorAckWait {
			return Server{}, false, fmt.Errorf("match %s: %w", key, errInProgress)
		}
		if rev, err = a.records.Update(ctx, key, pending(), e.Revision()); err != nil {
			rev = 0 // someone else took the stale claim over
		}
	}
	srv, err := a.backend.Allocate(ctx, m)
	if err != nil {
		// Give the claim back so the retry can allocate.
		_ = a.records.Delete(context.WithoutCancel(ctx), key, jetstream.LastRevision(rev))
		return Server{}, false, fmt.Errorf("allocate match %s: %w", key, err)
	}
	data, _ := json.Marshal(record{Server: &srv}) // always encodes
	var perr error
	for i := range 5 { // the server is ours now: try hard to remember it
		if _, perr = a.records.Update(ctx, key, data, rev); perr == nil {
			break
		}
		time.Sleep(time.Duration(50<<i) * time.Millisecond)
	}
	if perr != nil {
		return Server{}, false, fmt.Errorf("record allocation of %s: %w", key, perr)
	}
	return srv, false, nil
}

// markFailed records, by compare-and-set, that the match failed. It
// refuses when a server was allocated for it (the retry will assign it)
// or a request is allocating it now.
func (a *Allocator) markFailed(ctx context.Context, matchID string) error {
	failed, _ := json.Marshal(record{Failed: true}) // always encodes
	// Each pass loses only to a concurrent write of the record; a few
	// passes, then the match is nakked and decided on its next delivery.
	for range 5 {
		e, err := a.records.Get(ctx, matchID)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			_, err = a.records.Create(ctx, matchID, failed)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			return err
		}
		if err != nil {
			return err
		}
		var r record
		_ = json.Unmarshal(e.Value(), &r)
		switch {
		case r.Failed:
			return nil
		case r.Server != nil:
			return fmt.Errorf("match %s has a server (%s)", matchID, r.Server.Name)
		case r.Pending != 0 && a.now().Sub(time.UnixMilli(r.Pending)) < events.AllocatorAckWait:
			return fmt.Errorf("match %s: %w", matchID, errInProgress)
		}
		if _, err := a.records.Update(ctx, matchID, failed, e.Revision()); err == nil {
			return nil
		}
	}
	return fmt.Errorf("match %s: its allocation record kept changing", matchID)
}

// playURL is the page a player opens; the game server serves it.
func playURL(s Server, room, token string) string {
	q := url.Values{"room": {room}, "token": {token}}
	u := url.URL{Scheme: "http", Host: s.Address + ":" + strconv.Itoa(s.Port), Path: "/play", RawQuery: q.Encode()}
	return u.String()
}

// giveUp ends a match that could not be allocated: players are told why,
// the match is dead-lettered, and the message is acked. If even that cannot
// be stored, the error is returned and the message is nakked for later.
func (a *Allocator) giveUp(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err == nil {
			return out, nil
		}
		// Stopping, or another request is allocating this match: not a
		// failure. The message is nakked and comes back.
		if errors.Is(err, context.Canceled) || errors.Is(err, errInProgress) || msg.Context().Err() != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(msg.Context()), 5*time.Second)
		defer cancel()
		subject := msg.Metadata.Get(metaSubject)
		if m, derr := events.DecodeMatch(msg.Payload); derr == nil && a.cfg.Requeue && errors.Is(err, ErrNoCapacity) {
			if rerr := a.requeue(ctx, m); rerr != nil {
				return nil, fmt.Errorf("requeue after %w: %w", err, rerr)
			}
			a.met.outcomes.WithLabelValues("requeued").Inc()
			a.log.Warn("no game server; match's tickets requeued with their wait", "match_id", m.MatchID, "tickets", len(m.Tickets))
			return nil, nil
		}
		if m, derr := events.DecodeMatch(msg.Payload); derr == nil {
			// Only a match nobody allocated may fail, and only once.
			if ferr := a.markFailed(ctx, m.MatchID); ferr != nil {
				return nil, fmt.Errorf("%w (not failed: %w)", err, ferr)
			}
		}
		a.met.outcomes.WithLabelValues("failed_" + failReason(err)).Inc()
		dl := events.NewDeadLetter(Source, subject, 0, msg.Payload, err, a.now())
		if perr := a.pub.DeadLetter(ctx, dl); perr != nil {
			return nil, fmt.Errorf("dead-letter after %w: %w", err, perr)
		}
		if m, derr := events.DecodeMatch(msg.Payload); derr == nil {
			for _, t := range m.Tickets {
				for _, p := range t.Players {
					r := events.Result{TicketID: t.TicketID, PlayerID: p, Status: events.StatusFailed, MatchID: m.MatchID, Reason: err.Error()}
					if perr := a.pub.Result(ctx, r); perr != nil {
						return nil, fmt.Errorf("tell players after %w: %w", err, perr)
					}
				}
			}
		}
		a.log.Error("match failed; players told and match dead-lettered", "err", err, "subject", subject)
		return nil, nil
	}
}

// requeue gives the match's tickets back to the queue: their claims for
// this match are released, their players hear they are queued again, and
// each ticket is published anew with its id, skill and creation time (so
// it keeps its wait). A new message id lets it past the duplicate window.
func (a *Allocator) requeue(ctx context.Context, m events.Match) error {
	ids := make([]string, len(m.Tickets))
	for i, t := range m.Tickets {
		ids[i] = t.TicketID
	}
	a.claims.Release(ctx, ids, events.MatchOwner(m.MatchID))
	for _, mt := range m.Tickets {
		t := events.Ticket{SchemaVersion: events.SchemaVersion, TicketID: mt.TicketID, Mode: m.Mode, Skill: mt.Skill, CreatedAt: mt.CreatedAt}
		if len(mt.Players) == 1 {
			t.PlayerID = mt.Players[0]
		} else {
			t.Party = mt.Players
		}
		for _, p := range mt.Players {
			r := events.Result{TicketID: mt.TicketID, PlayerID: p, Status: events.StatusQueued, Reason: "no game server was free; queued again with the same wait"}
			if err := a.pub.Result(ctx, r); err != nil {
				return err
			}
		}
		msg, err := events.NewMsg(ctx, a.subj.Ticket(m.Region, m.Tier), mt.TicketID+"-requeue-"+m.MatchID, t)
		if err != nil {
			return err
		}
		if _, err := a.js.PublishMsg(ctx, msg); err != nil {
			return fmt.Errorf("requeue ticket %s: %w", mt.TicketID, err)
		}
	}
	return nil
}

func failReason(err error) string {
	switch {
	case errors.Is(err, ErrNoCapacity):
		return "no_capacity"
	case errors.Is(err, events.ErrInvalid):
		return "invalid"
	default:
		return "error"
	}
}

const metaSubject = "nats_subject"

// unmarshaler turns any NATS message into a watermill message and never
// fails: watermill-nats drops a message it cannot unmarshal without acking
// it, which would redeliver a poison message forever. Validation happens in
// the handler, where a bad match is dead-lettered with its reason.
type unmarshaler struct{}

func (unmarshaler) Unmarshal(m *nats.Msg) (*message.Message, error) {
	id := m.Header.Get(jetstream.MsgIDHeader)
	if id == "" {
		id = watermill.NewUUID()
	}
	msg := message.NewMessage(id, m.Data)
	for k, v := range m.Header {
		if len(v) > 0 {
			msg.Metadata.Set(k, v[0])
		}
	}
	msg.Metadata.Set(metaSubject, m.Subject)
	return msg, nil
}
