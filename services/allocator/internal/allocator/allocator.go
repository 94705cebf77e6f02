// Package allocator turns formed matches into game-server assignments.
//
// Requests arrive through a watermill router, fed by a puller (pull.go)
// from the allocators' pull consumer that events.Provision created. The
// puller never creates or deletes a consumer; it pulls only as many
// matches as there is room for (Config.Concurrency), tells the server it
// is working on each while the router works on it, and acks or naks each
// as the router settles it.
//
// For each match the handler asks the Backend for a server, signs a join
// token per player and publishes each player's assignment on their result
// subject. Transient failures are retried with backoff inside the handler
// (watermill's Retry middleware); a failure marked permanent (ErrPermanent:
// a match that does not decode, or one that failed before) is not retried.
// What still fails is given up: every player gets a "failed" result with
// the reason, the match is dead-lettered, and the message is acked (or,
// with Config.Requeue and no server free, its tickets are queued again).
// So a player always hears back. NATS not answering (a timeout, a cut
// connection) is no reason to give a match up: it is nakked and comes
// back, to this allocator or another; so is a give-up that cannot be
// stored. The consumer delivers a match without bound, and each delivery
// is acked or nakked when its handling ends, never held past it.
//
// The parts, one file each:
//   - allocator.go: Config, the Backend interface, New.
//   - router.go: the router and its middleware order (Run).
//   - pull.go: the puller, which feeds the router and settles its matches.
//   - handle.go: one match's assignment (assigner): server, join tokens, results.
//   - record.go: the allocations bucket's per-match record (records), the
//     compare-and-set that gives a match one server, or marks it failed;
//     reserve.go: its reservation, the first step of that.
//   - delivery.go: what the retries of one delivery share (its token, the
//     record it reserved, and whether it asked the backend), so a retry
//     knows its own reservation.
//   - unrecorded.go, unasked.go: what a cut left in the middle of an
//     allocation and this process remembers (a server given and not
//     recorded; a reservation whose delivery asked nothing), for the
//     match's next request here; reconcile.go writes it into the records
//     every second, for a request in another allocator.
//   - failure.go: permanent failures and the give-up policy (failure): fail
//     the players and dead-letter, or requeue the tickets.
//   - capacity.go: free-room reports for the frontends.
//   - backfill.go: what the allocator knows of running rooms (rooms),
//     which request it takes from which server, and the seats a match
//     that fills one is given there (assigner.roomServer); handle.go
//     sends it to the room's server (assigner.handleBackfill).
//   - backfill_request.go: the requests game servers show, published for
//     the matcher (RequestBackfills), each room at most every
//     BackfillConfig.MinInterval.
//   - promise.go: the seats promised, in a room's record, to the players
//     sent to fill it, until their join tokens expire.
package allocator

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
)

// Source is the name the allocator signs its dead letters with.
const Source = "allocator"

// ErrNoCapacity is returned by a Backend that has no server for a match.
var ErrNoCapacity = errors.New("no game server capacity")

// ErrModeNotHosted is returned, marked Permanent, by a Backend none of
// whose game servers host the match's mode: waiting does not fix it, a
// deployment that hosts the mode does.
var ErrModeNotHosted = errors.New("no game servers host this mode")

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
	// RetryDeadline bounds retries of one delivery of a match before it
	// is given up (or nakked, when NATS did not answer or another request
	// is allocating it: those never fail a match).
	RetryDeadline time.Duration
	// CloseTimeout is how long in-flight matches may finish on shutdown:
	// a backend call that may take its whole bound needs
	// events.AllocatorStopGrace.
	CloseTimeout time.Duration
	// NakDelay is when a match that was not settled (another request is
	// allocating it, this allocator is stopping, NATS is away) comes back.
	// The consumer delivers a match without bound, so a match held by a
	// stale pending record comes back until the record is taken over
	// (events.AllocatorReservationStale after it was written).
	NakDelay time.Duration
	// Requeue, when no game server can be found in time, puts the match's
	// tickets back in the queue with their original wait, instead of
	// telling the players it failed.
	Requeue bool
	// Backfill paces the rooms' requests (RequestBackfills, given it by
	// the caller) and bounds what a room is sent (its Turnover, which
	// the fills of Run's assigner are held to as well).
	Backfill BackfillConfig
}

// defaults are the one statement of the defaults: New fills a zero field
// from them, and RegisterFlags shows them as the flags' defaults.
var defaults = Config{
	TokenTTL:    10 * time.Minute, // a player opens the game within minutes of the match
	Concurrency: 64,               // each match waits on a few JetStream round trips and the backend
	// Below events.AllocatorReservationStale (Validate), so a delivery
	// is decided before another request may take its reservation over.
	RetryDeadline: 10 * time.Second,
	// Matches in flight at SIGTERM finish, their backend calls included
	// (parse refuses less with the kube backend).
	CloseTimeout: events.AllocatorStopGrace,
	NakDelay:     5 * time.Second, // an unsettled match comes back soon, at one delivery per 5 s while a cut lasts
}

func (c *Config) setDefaults() {
	envflag.OrDefault(&c.NakDelay, defaults.NakDelay)
	envflag.OrDefault(&c.TokenTTL, defaults.TokenTTL)
	envflag.OrDefault(&c.Concurrency, defaults.Concurrency)
	envflag.OrDefault(&c.RetryDeadline, defaults.RetryDeadline)
	envflag.OrDefault(&c.CloseTimeout, defaults.CloseTimeout)
	c.Backfill.setDefaults()
}

// RegisterFlags registers the allocator's flags on fs, with the defaults
// above. The caller sets JoinKey (from -join-key-file) and Requeue (from
// -on-no-capacity); NakDelay has no flag.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.TokenTTL, "join-token-ttl", defaults.TokenTTL, "how long a join token admits its player")
	fs.IntVar(&c.Concurrency, "concurrency", defaults.Concurrency, "matches allocated at once (each waits on a few JetStream round trips and the backend)")
	fs.DurationVar(&c.RetryDeadline, "retry-deadline", defaults.RetryDeadline, "how long one delivery of a match is retried before it is given up (its players told it failed, or its tickets requeued); NATS not answering never fails a match: it is delivered again")
	fs.DurationVar(&c.CloseTimeout, "shutdown-grace", defaults.CloseTimeout, "time for in-flight matches after SIGTERM")
	c.Backfill.RegisterFlags(fs)
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if len(c.JoinKey) != ed25519.PrivateKeySize {
		errs = append(errs, fmt.Errorf("join key is %d bytes, want an Ed25519 private key (%d)", len(c.JoinKey), ed25519.PrivateKeySize))
	}
	if err := c.Backfill.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.RetryDeadline >= events.AllocatorReservationStale {
		errs = append(errs, fmt.Errorf("retry deadline %s must be below a reservation's life %s", c.RetryDeadline, events.AllocatorReservationStale))
	}
	return errors.Join(errs...)
}

// Allocator runs the request router. Bind binds the buckets and builds
// the records and rooms on them; Run builds the rest of its parts
// (assigner, failure) on those.
type Allocator struct {
	cfg     Config
	nc      *nats.Conn
	js      jetstream.JetStream
	subj    events.Subjects
	backend Backend
	log     *slog.Logger
	met     *metrics
	signer  *jointoken.Signer
	// bound is what Bind built (nil before).
	bound *boundParts
	// routing is closed (once: routed) when Run's router runs (Routing).
	routing chan struct{}
	routed  sync.Once
	// refused: the last pulls were refused for want of a permission
	// (Refused).
	refused atomic.Bool
}

type metrics struct {
	latency  prometheus.Histogram
	outcomes *prometheus.CounterVec
	retries  prometheus.Counter
	// reconciled counts the records left in the middle of an allocation
	// and reconciled before they went stale, by how (records.reconciledBy).
	reconciled *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "quickmatch_allocator_allocation_seconds", Help: "Time to allocate a match, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quickmatch_allocator_matches_total", Help: "Matches by outcome: assigned, reused (a repeat), failed_<reason>, requeued, backfilled (sent to a running room), backfill_requeued (that room was gone, or its seats taken or promised).",
		}, []string{"outcome"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quickmatch_allocator_retries_total", Help: "Retries of allocations after an error.",
		}),
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quickmatch_allocator_records_reconciled_total", Help: "Match records a cut left in the middle of an allocation and reconciled before they went stale (30 s), by how: server_recorded (a server given and not recorded, written in on a later try), unasked_taken (a reservation left by a delivery that asked the backend nothing, taken by the match's next request here) or unasked_deleted (the same, deleted for a request in another allocator).",
		}, []string{"how"}),
	}
}

// New returns an allocator; reg (may be nil) receives its metrics.
func New(cfg Config, nc *nats.Conn, js jetstream.JetStream, subj events.Subjects, backend Backend, log *slog.Logger, reg ...prometheus.Registerer) (*Allocator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("allocator config: %w", err)
	}
	met := newMetrics()
	signer, err := jointoken.NewSigner(cfg.JoinKey)
	if err != nil {
		return nil, fmt.Errorf("allocator config: %w", err)
	}
	for _, r := range reg {
		r.MustRegister(met.latency, met.outcomes, met.retries, met.reconciled)
	}
	log.Info("join tokens signed with key", "key_id", signer.KeyID())
	return &Allocator{cfg: cfg, nc: nc, js: js, subj: subj, backend: backend, log: log, met: met, signer: signer, routing: make(chan struct{})}, nil
}
