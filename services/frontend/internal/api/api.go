// Package api is the frontend's HTTP surface: tickets as JSON under /v1
// (create, get, cancel, Server-Sent Events), the WebSocket endpoints game
// clients hold open while they wait, the find-a-match page, the OpenAPI
// description and the ops endpoints.
package api

import (
	"context"
	_ "embed" // the OpenAPI description
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/admission"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/ratelimit"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

//go:embed openapi.yaml
var openAPI []byte

// Tickets is what the API needs from the ticket service. A caller that
// does not own a ticket gets tickets.ErrNotFound for it.
type Tickets interface {
	Create(ctx context.Context, caller identity.Caller, req tickets.Request, idempotencyKey string) (tickets.View, error)
	// AnswerRepeat answers a keyed creation from the ticket an earlier
	// attempt made, and creates none (tickets.ErrNotFound if there is
	// none, or its shard's refusal: drained, a full region): a repeat
	// served past the limit (ticketapi.HeaderRepeat).
	AnswerRepeat(ctx context.Context, caller identity.Caller, req tickets.Request, idempotencyKey string) (tickets.View, error)
	Get(ctx context.Context, caller identity.Caller, ticketID string) (tickets.View, error)
	Cancel(ctx context.Context, caller identity.Caller, ticketID, reason string) (tickets.View, error)
	RecordFor(ctx context.Context, caller identity.Caller, ticketID string) (tickets.Record, error)
	View(ctx context.Context, rec tickets.Record, player string) (tickets.View, error)
	// RuleSet is the rule set a ticket is checked against now; Regions
	// are the regions it may name. The find-a-match page offers their
	// modes, attributes and regions.
	RuleSet() *rules.Set
	Regions() events.Regions
}

// Results is what the API needs from the results tracker.
type Results interface {
	Wait(ctx context.Context, ticketID, player string) (results.Waiting, error)
	Follow(ctx context.Context, t *events.Ticket, player string) (results.Waiting, error)
	// AskFollowed asks every frontend whether a client follows the
	// ticket (results.Tracker.AskFollowed).
	AskFollowed(ctx context.Context, ticketID string) (followed, complete bool, err error)
	// SetHandover takes the tickets other frontends hand over, and hands
	// over this one's at the end (results.Tracker.SetHandover).
	SetHandover(take func(ticketIDs []string), pending func() []string)
}

// ErrorBody is every error answer (the contract's, pkg/ticketapi).
type ErrorBody = ticketapi.ErrorBody

// DrainedBody is the shard an operator drained, and why.
type DrainedBody = ticketapi.DrainedBody

// Config of the API.
type Config struct {
	// RatePerSecond and RateBurst limit each client: the player when
	// authenticated, else the address (a server credential has none:
	// allow). 0: no limit.
	RatePerSecond float64
	RateBurst     int
	// CreateRatePerSecond and CreateRateBurst limit each player's
	// creations besides: a ticket leaves records that live over an hour
	// (events.TicketRecordTTL, RecordTTL) whatever becomes of it, so at
	// the request limit one player could keep hundreds of thousands of
	// keys in NATS. A server credential (a game backend queueing for its
	// players) is not limited by it. 0: no limit.
	CreateRatePerSecond float64
	CreateRateBurst     int
	// TrustProxy takes the client address from X-Forwarded-For, as
	// written by TrustedProxies (default DefaultTrustedProxies).
	TrustProxy bool
	// Heartbeat is how often idle SSE and WebSocket clients get a ping.
	Heartbeat time.Duration
	// WSDefaults fill in what a /ws client leaves out.
	WSRegion string
	WSSkill  int

	// Auth verifies bearer tokens. Required unless Insecure.
	Auth Authenticator
	// Insecure turns identity off: every caller may act for any player.
	Insecure bool
	// DevIssuer, if set, serves POST /dev/token (the development issuer).
	DevIssuer http.Handler
	// MetricsApart: /metrics is served on the frontend's ops address
	// (-ops-addr), and the API's serves the probes alone: the API's port
	// is the players', and the metrics are the operator's.
	MetricsApart bool
	// BodyTimeout bounds reading a request body (a client that sends it
	// slowly gets 408), and writing a WebSocket handshake's 101 (a client
	// that does not take it is cut off); default 10 s.
	BodyTimeout time.Duration
	// WriteTimeout bounds writing each answer, and each event of an SSE
	// stream or WebSocket (re-armed before it): a client that stops
	// reading is cut off, instead of holding its connection and handler
	// for good; default 30 s.
	WriteTimeout time.Duration
	// MaxStreamsPerClient caps the SSE streams and WebSockets one client
	// (as for the rate limit) holds open at once; 429 past it. Default 8,
	// negative means no cap.
	MaxStreamsPerClient int
	// TrustedProxies are the proxies whose X-Forwarded-For is believed,
	// when TrustProxy is set.
	TrustedProxies []netip.Prefix
	// Queue, if set, tells the expected wait a queued ticket's view
	// carries (queue.Watcher); nil: views carry none.
	Queue Queue
	// WaitRefresh is how often a waiting SSE or /ws/events client is
	// looked at for a new expected wait (refresher): at most one queued
	// event per period, and only for a figure that moved. Default 10 s,
	// negative: never (the first queued event's figure stays).
	WaitRefresh time.Duration
	// Admission is the overload control of ticket creations (package
	// admission); its zero value (no Target) turns it off.
	Admission admission.Config
	// LostGrace is how long the ticket of a /ws/events client whose
	// connection was lost is kept for it to follow again (its event
	// stream, on any frontend) before it is cancelled, and how often it
	// is asked about again while someone follows it: a player who went
	// away is otherwise matched, and a partner sent to a game it never
	// joins, until its mode's max_wait. Up to half again (lostGrace).
	// Default DefaultLostGrace, negative: kept until then.
	LostGrace time.Duration
	// VerifyWait bounds what a creation's token verification may wait
	// for while it holds its admission slot (DefaultVerifyWait says why);
	// default DefaultVerifyWait.
	VerifyWait time.Duration
}

// Defaults of Config: what New fills in for a zero field, and the
// defaults of the frontend's flags.
const (
	DefaultHeartbeat           = 15 * time.Second
	DefaultWSRegion            = "eu"
	DefaultBodyTimeout         = 10 * time.Second
	DefaultWriteTimeout        = 30 * time.Second
	DefaultMaxStreamsPerClient = 8
	DefaultWaitRefresh         = 10 * time.Second
	// DefaultLostGrace is above the clients' idle timeout (45 s,
	// pkg/client and clients/ts): a client whose frontend saw the socket
	// cut while the client did not (a proxy or NAT reset toward the
	// frontend) notices only after it, then follows the ticket.
	DefaultLostGrace = 60 * time.Second
)

// DefaultWSSkill is the -ws-skill flag's default. New leaves a zero
// WSSkill as it is: 0 is a skill a /ws client may be given.
const DefaultWSSkill = 1000

// setDefaults fills in the zero fields that have a default.
func (c *Config) setDefaults() {
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.WaitRefresh == 0 {
		c.WaitRefresh = DefaultWaitRefresh
	}
	if c.LostGrace == 0 {
		c.LostGrace = DefaultLostGrace
	}
	if c.WSRegion == "" {
		c.WSRegion = DefaultWSRegion
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = DefaultBodyTimeout
	}
	if c.MaxStreamsPerClient == 0 {
		c.MaxStreamsPerClient = DefaultMaxStreamsPerClient
	}
	if len(c.TrustedProxies) == 0 {
		c.TrustedProxies = DefaultTrustedProxies
	}
	if c.VerifyWait <= 0 {
		c.VerifyWait = DefaultVerifyWait
	}
}

// ErrNoIdentity: the API was given neither an Authenticator nor Insecure.
var ErrNoIdentity = errors.New("no identity: give a token verifier, or run insecure explicitly")

// Authenticator verifies a bearer token (identity.Verifier).
type Authenticator interface {
	Verify(ctx context.Context, raw string) (identity.Caller, error)
}

// API serves HTTP.
type API struct {
	cfg     Config
	tickets Tickets
	results Results
	log     *slog.Logger
	limiter *ratelimit.Limiter
	// creations is each player's limit of creations (Config.CreateRatePerSecond).
	creations *ratelimit.Limiter
	streams   *streams
	upgrader  websocket.Upgrader
	now       func() time.Time
	// admission bounds the ticket creations in flight (overloaded).
	admission *admission.Limiter
	// done ends every waiting SSE and WebSocket client on shutdown.
	done <-chan struct{}
	// ask is what this frontend would ask about, handed over when it
	// stops (handover.go).
	ask asking
	met apiMetrics
}

type apiMetrics struct {
	requests   *prometheus.CounterVec
	rejections *prometheus.CounterVec
	// overloaded is rejections' "overloaded": looked up once, as the
	// refusal past capacity is the one answered most.
	overloaded prometheus.Counter
	// repeats counts the repeats served past the limit (serveRepeat), by
	// outcome (repeatAnswered and its siblings).
	repeats *prometheus.CounterVec
	open    *prometheus.GaugeVec
}

// New returns the handler of the whole frontend. Waiting clients are let go
// when done is closed.
func New(cfg Config, t Tickets, r Results, log *slog.Logger, ready *ops.Readiness, reg *prometheus.Registry, done <-chan struct{}) (http.Handler, error) {
	page, err := pageTemplate()
	if err != nil {
		return nil, err
	}
	if cfg.Auth == nil && !cfg.Insecure {
		return nil, ErrNoIdentity
	}
	cfg.setDefaults()
	a := &API{
		cfg: cfg, tickets: t, results: r, log: log, now: time.Now, done: done,
		limiter:   ratelimit.New(cfg.RatePerSecond, cfg.RateBurst),
		creations: ratelimit.New(cfg.CreateRatePerSecond, cfg.CreateRateBurst),
		streams:   &streams{max: cfg.MaxStreamsPerClient, open: map[string]int{}},
		// The handshake's 101 holds a creation slot (serveWebSocket): a
		// client that never reads it must not hold the slot for good.
		upgrader: websocket.Upgrader{ReadBufferSize: 512, WriteBufferSize: 1024, HandshakeTimeout: cfg.BodyTimeout},
		met: apiMetrics{
			requests: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "quickmatch_frontend_ticket_requests_total", Help: "Ticket creations by outcome.",
			}, []string{"outcome"}),
			rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "quickmatch_frontend_rejections_total", Help: "Requests refused, by reason.",
			}, []string{"reason"}),
			repeats: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "quickmatch_frontend_overload_repeats_total",
				Help: "Keyed creations said to repeat one (Quickmatch-Repeat) while creations were refused for overload, by outcome: answered (202 from the ticket an earlier attempt made), no_ticket (none was made: refused for overload), no_slot (the repeats' slots were taken: refused for overload, Retry-After 1-3 s), failed (another error answer). Those refused for their token or rate limit are counted in the rejections only.",
			}, []string{"outcome"}),
			open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "quickmatch_frontend_open_connections", Help: "Clients waiting on a connection, by kind.",
			}, []string{"kind"}),
		},
	}
	a.ask.tickets = map[string]int{}
	if cfg.LostGrace > 0 {
		r.SetHandover(a.takeOver, a.toHandOver)
	}
	a.met.overloaded = a.met.rejections.WithLabelValues("overloaded")
	for _, o := range []string{repeatAnswered, repeatNoTicket, repeatNoSlot, repeatFailed} {
		a.met.repeats.WithLabelValues(o) // every series from 0, for increase()
	}
	if cfg.Admission.Log == nil {
		cfg.Admission.Log = log
	}
	a.admission = admission.New(cfg.Admission)
	reg.MustRegister(a.met.requests, a.met.rejections, a.met.repeats, a.met.open, a.admission)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ticketapi.PathTickets, a.postTicket)
	mux.HandleFunc("GET "+ticketapi.TicketPath("{id}"), a.authenticate(false, a.getTicket))
	mux.HandleFunc("DELETE "+ticketapi.TicketPath("{id}"), a.authenticate(true, a.cancelTicket))
	mux.HandleFunc("GET "+ticketapi.EventsPath("{id}"), a.authenticate(false, a.ticketEvents))
	mux.HandleFunc("GET "+ticketapi.PathWS, a.admit(a.demoWebSocket))
	mux.HandleFunc("GET "+ticketapi.PathWSEvents, a.admit(a.eventsWebSocket))
	if cfg.DevIssuer != nil {
		mux.HandleFunc("POST /dev/token", func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			_ = rc.SetReadDeadline(time.Now().Add(a.cfg.BodyTimeout))
			cfg.DevIssuer.ServeHTTP(w, r)
		})
	}
	mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(openAPI)
	})
	mux.HandleFunc("GET /{$}", servePage(page, func() pageData { return newPageData(t.RuleSet(), t.Regions()) }))
	if cfg.MetricsApart {
		ops.RegisterProbes(mux, ready)
	} else {
		ops.Register(mux, ready, reg)
	}
	return a.writeBounded(mux), nil
}

// requestMeta starts (or continues, from the client's header) the
// correlation id that travels with the ticket through every service.
func requestMeta(r *http.Request) (context.Context, string) {
	m := events.Meta{CorrelationID: r.Header.Get(ticketapi.HeaderCorrelationID), TraceParent: r.Header.Get(ticketapi.HeaderTraceParent)}.Bounded()
	if m.CorrelationID == "" {
		m.CorrelationID = events.NewCorrelationID()
	}
	return events.WithMeta(r.Context(), m), m.CorrelationID
}

// createTicket creates the ticket of a POST, admitted in sl (postTicket).
func (a *API) createTicket(w http.ResponseWriter, r *http.Request, caller identity.Caller, sl *slot, body []byte) {
	var req tickets.Request
	if err := events.DecodeStrict("request", body, &req); err != nil {
		a.writeError(w, err)
		return
	}
	ctx, cid := requestMeta(r)
	w.Header().Set(ticketapi.HeaderCorrelationID, cid)
	ctx, span := startCreate(ctx)
	view, err := a.create(ctx, sl, caller, req, r.Header.Get(ticketapi.HeaderIdempotencyKey))
	endCreate(span, view, err)
	if sl.repeat() {
		switch {
		case errors.Is(err, tickets.ErrNotFound):
			a.met.repeats.WithLabelValues(repeatNoTicket).Inc()
			a.overloaded(w) // no attempt made it: a creation, refused
			return
		case err != nil:
			a.met.repeats.WithLabelValues(repeatFailed).Inc()
		default:
			a.met.repeats.WithLabelValues(repeatAnswered).Inc()
			sl.answer() // its client will not come back
		}
	}
	if err != nil {
		// A client that hung up is no fault of the broker's.
		if outcome(err) == "unavailable" && ctx.Err() == nil {
			a.log.Error("create ticket", "correlation_id", cid, "err", err)
		}
		a.writeError(w, err)
		return
	}
	a.met.requests.WithLabelValues("queued").Inc()
	w.Header().Set("Location", ticketapi.TicketPath(view.TicketID))
	writeJSON(w, http.StatusAccepted, a.withWait(view))
}

func (a *API) getTicket(w http.ResponseWriter, r *http.Request, caller identity.Caller) {
	view, err := a.tickets.Get(r.Context(), caller, r.PathValue("id"))
	if err != nil {
		if outcome(err) == "unavailable" {
			a.log.Error("get ticket", "ticket_id", r.PathValue("id"), "err", err)
		}
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.withWait(view))
}

func (a *API) cancelTicket(w http.ResponseWriter, r *http.Request, caller identity.Caller) {
	ctx, cid := requestMeta(r)
	w.Header().Set(ticketapi.HeaderCorrelationID, cid)
	view, err := a.tickets.Cancel(ctx, caller, r.PathValue("id"), "cancelled by the client")
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, view)
	case errors.Is(err, tickets.ErrAlreadyDecided):
		if view.Status == events.StatusCancelled {
			writeJSON(w, http.StatusOK, view) // cancelling twice is fine
			return
		}
		writeJSON(w, http.StatusConflict, struct {
			ErrorBody
			tickets.View
		}{ErrorBody{Error: "ticket cannot be cancelled: it is " + string(view.Status)}, view})
	default:
		if outcome(err) == "unavailable" {
			a.log.Error("cancel ticket", "ticket_id", r.PathValue("id"), "err", err)
		}
		a.writeError(w, err)
	}
}
