// Package api is the frontend's HTTP API: tickets as JSON under /v1, the
// page that lets a person in a browser find a match, and the ops endpoints.
package api

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

//go:embed page/*
var page embed.FS

// Tickets is what the API needs from the ticket service.
type Tickets interface {
	Create(ctx context.Context, req tickets.Request, idempotencyKey string) (tickets.View, error)
	Get(ctx context.Context, ticketID string) (tickets.View, error)
}

// ErrorBody is every error answer.
type ErrorBody struct {
	Error  string              `json:"error"`
	Fields []events.FieldError `json:"fields,omitempty"`
}

// API serves HTTP.
type API struct {
	tickets Tickets
	log     *slog.Logger
	created *prometheus.CounterVec
}

// New returns the handler of the whole frontend.
func New(t Tickets, log *slog.Logger, ready *ops.Readiness, reg *prometheus.Registry) (http.Handler, error) {
	pageFS, err := fs.Sub(page, "page")
	if err != nil {
		return nil, fmt.Errorf("embedded page: %w", err)
	}
	a := &API{tickets: t, log: log, created: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quickmatch_frontend_ticket_requests_total", Help: "Ticket creation requests by outcome.",
	}, []string{"outcome"})}
	reg.MustRegister(a.created)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/tickets", a.createTicket)
	mux.HandleFunc("GET /v1/tickets/{id}", a.getTicket)
	mux.Handle("GET /", http.FileServerFS(pageFS))
	ops.Register(mux, ready, reg)
	return mux, nil
}

func (a *API) createTicket(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, events.MaxPayloadBytes))
	if err != nil {
		a.created.WithLabelValues("too_large").Inc()
		writeJSON(w, http.StatusRequestEntityTooLarge, ErrorBody{Error: "request body too large"})
		return
	}
	var req tickets.Request
	if err := events.DecodeStrict("request", body, &req); err != nil {
		a.created.WithLabelValues("invalid").Inc()
		writeError(w, err)
		return
	}
	// The correlation id starts here (or comes from the client) and travels
	// in NATS headers through every service that touches the ticket.
	cid := r.Header.Get("X-Correlation-Id")
	if cid == "" || len(cid) > 128 {
		cid = events.NewCorrelationID()
	}
	w.Header().Set("X-Correlation-Id", cid)
	ctx := events.WithMeta(r.Context(), events.Meta{CorrelationID: cid, TraceParent: r.Header.Get("Traceparent")})
	view, err := a.tickets.Create(ctx, req, r.Header.Get("Idempotency-Key"))
	if err != nil {
		a.created.WithLabelValues(outcome(err)).Inc()
		if !errors.Is(err, events.ErrInvalid) && !errors.Is(err, tickets.ErrIdempotencyReuse) {
			a.log.Error("create ticket", "correlation_id", cid, "err", err)
		}
		writeError(w, err)
		return
	}
	a.created.WithLabelValues("queued").Inc()
	w.Header().Set("Location", "/v1/tickets/"+view.TicketID)
	writeJSON(w, http.StatusAccepted, view)
}

func (a *API) getTicket(w http.ResponseWriter, r *http.Request) {
	view, err := a.tickets.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		if !errors.Is(err, tickets.ErrNotFound) {
			a.log.Error("get ticket", "ticket_id", r.PathValue("id"), "err", err)
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, view)
}

func outcome(err error) string {
	switch {
	case errors.Is(err, events.ErrInvalid):
		return "invalid"
	case errors.Is(err, tickets.ErrIdempotencyReuse):
		return "conflict"
	default:
		return "unavailable"
	}
}

func writeError(w http.ResponseWriter, err error) {
	var ve *events.ValidationError
	switch {
	case errors.As(err, &ve):
		writeJSON(w, http.StatusBadRequest, ErrorBody{Error: ve.Error(), Fields: ve.Fields})
	case errors.Is(err, tickets.ErrNotFound):
		writeJSON(w, http.StatusNotFound, ErrorBody{Error: err.Error()})
	case errors.Is(err, tickets.ErrIdempotencyReuse):
		writeJSON(w, http.StatusConflict, ErrorBody{Error: err.Error()})
	default:
		// The broker is unreachable or refused the ticket (stream full):
		// nothing was queued, and the client may retry with the same key.
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: "ticket service unavailable, retry with the same Idempotency-Key"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do
}
