package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/capacity"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/drain"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

// create makes the ticket of an admitted creation, giving sl back as
// soon as Create ends, on every path, a panic in Create too: a slot never
// given back is taken for good, and enough of them refuse every creation.
func (a *API) create(ctx context.Context, sl *slot, caller identity.Caller, req tickets.Request, key string) (tickets.View, error) {
	measured := false
	defer func() { sl.release(measured) }()
	if sl.repeat() {
		return a.tickets.AnswerRepeat(ctx, caller, req, key)
	}
	view, err := a.tickets.Create(ctx, caller, req, key)
	measured = brokerAnswered(ctx, err)
	return view, err
}

// brokerAnswered says whether a creation's latency speaks for the
// broker's (admission.Slot.Done): it was queued, or the broker answered
// it with a failure or let it time out. Not a creation refused before
// the broker (invalid, forbidden, a full region, a drain), nor one whose
// request ended (the client hung up: its calls fail at once), nor one
// that found no responder (no stream leader: it fails in microseconds):
// their instant ends would make a slow broker look fast, and the limit
// would grow when it should be cut.
func brokerAnswered(ctx context.Context, err error) bool {
	switch {
	case err == nil:
		return true
	case outcome(err) != "unavailable", ctx.Err() != nil:
		return false
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return false
	}
	return true
}

// retryAfter is how long a client refused with err should wait before
// it asks again; 0 for a refusal that retrying does not mend.
func retryAfter(err error) time.Duration {
	var full *capacity.FullError
	var drained *drain.DrainedError
	switch {
	case errors.As(err, &full):
		return full.RetryAfter
	case errors.As(err, &drained):
		return drained.RetryAfter
	case outcome(err) == "unavailable":
		return time.Second
	}
	return 0
}

// outcome names an error for metrics and decides what is logged.
func outcome(err error) string {
	switch {
	case errors.Is(err, events.ErrInvalid):
		return "invalid"
	case errors.Is(err, tickets.ErrIdempotencyReuse):
		return "idempotency_conflict"
	case errors.Is(err, tickets.ErrNotFound):
		return "not_found"
	case errors.Is(err, tickets.ErrForbidden):
		return "forbidden"
	case errors.Is(err, capacity.ErrFull):
		return "region_full"
	case errors.Is(err, drain.ErrDrained):
		return "drained"
	default:
		return "unavailable"
	}
}

func (a *API) reject(w http.ResponseWriter, reason string, status int, body ErrorBody) {
	a.met.rejections.WithLabelValues(reason).Inc()
	writeJSON(w, status, body)
}

func (a *API) writeError(w http.ResponseWriter, err error) {
	var ve *events.ValidationError
	var full *capacity.FullError
	var drained *drain.DrainedError
	switch {
	case errors.As(err, &ve):
		a.reject(w, "invalid", http.StatusBadRequest, ErrorBody{Error: ve.Error(), Fields: ve.Fields})
	case errors.Is(err, tickets.ErrNotFound):
		writeJSON(w, http.StatusNotFound, ErrorBody{Error: tickets.ErrNotFound.Error()})
	case errors.Is(err, tickets.ErrForbidden):
		a.reject(w, "forbidden", http.StatusForbidden, ErrorBody{Error: err.Error()})
	case errors.Is(err, tickets.ErrIdempotencyReuse):
		a.reject(w, "idempotency_conflict", http.StatusConflict, ErrorBody{Error: err.Error()})
	case errors.As(err, &full):
		w.Header().Set(ticketapi.HeaderRetryAfter, seconds(retryAfter(err)))
		a.reject(w, "region_full", http.StatusServiceUnavailable, ErrorBody{Error: full.Error(), SuggestRegion: full.Suggest})
	case errors.As(err, &drained):
		// The shard and the operator's reason, for a client to show.
		w.Header().Set(ticketapi.HeaderRetryAfter, seconds(retryAfter(err)))
		a.reject(w, "drained", http.StatusServiceUnavailable, ErrorBody{Error: drained.Error(), Drained: &DrainedBody{Shard: drained.Shard.String(), Reason: drained.Reason}})
	default:
		// The broker is unreachable or refused the ticket (stream full):
		// nothing was queued, and the client may retry with the same key.
		w.Header().Set(ticketapi.HeaderRetryAfter, seconds(retryAfter(err)))
		a.reject(w, "unavailable", http.StatusServiceUnavailable, ErrorBody{Error: "ticket service unavailable, retry with the same Idempotency-Key"})
	}
}

// seconds writes d as Retry-After does: whole seconds.
func seconds(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do
}

// writeBounded arms each request's write deadline, Config.WriteTimeout
// from its start, before its handler runs: a client that stops reading
// (pipelined requests whose answers it never takes, a flow-control window
// it never opens) is cut off once its answer cannot be written by then,
// where without a deadline the handler, its goroutine and the connection
// waited for good. The deadline covers the handler's work too, which NATS
// calls bound (a few seconds each). Event streams re-arm it before each
// write (sseWriter, boundedEmit).
func (a *API) writeBounded(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(a.cfg.WriteTimeout))
		h.ServeHTTP(w, r)
	})
}
