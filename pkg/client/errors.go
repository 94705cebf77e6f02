package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// Errors an *Error matches (errors.Is), one per refusal a caller branches
// on; and the client's own for what a server sent that it cannot take.
var (
	// ErrOverloaded: overload control refused the creation; retry after
	// Error.RetryAfter (1-3 s, more as refusals outnumber admissions).
	ErrOverloaded = errors.New("frontend overloaded")
	// ErrDrained: an operator drained the ticket's shard (Error.Body.Drained
	// names it and why).
	ErrDrained = errors.New("shard drained")
	// ErrRegionFull: the region has no free game-server rooms, what the
	// frontend and README "Words" call out of capacity (capacity.ErrFull);
	// Error.Body.SuggestRegion may name a region that has room.
	ErrRegionFull = errors.New("region full")
	// ErrUnavailable: any other 5xx; nothing was queued, retry with the
	// same idempotency key.
	ErrUnavailable = errors.New("ticket service unavailable")
	// ErrRateLimited: a 429 (too many requests, or too many open streams).
	ErrRateLimited = errors.New("rate limited")
	// ErrUnauthorized: a 401 even with a refreshed token.
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	// ErrNotFound: no such ticket, or not the caller's.
	ErrNotFound = errors.New("ticket not found")
	// ErrInvalid: the request was refused as invalid (Error.Body.Fields).
	ErrInvalid = errors.New("invalid request")
	// ErrConflict: a 409 (a cancel too late: Error.Ticket; an idempotency
	// key reused for another request).
	ErrConflict = errors.New("conflict")

	// ErrTooLarge: an event or answer above Config.MaxEventBytes.
	ErrTooLarge = errors.New("server sent more than the client takes")
	// ErrMalformed: an event stream or answer that breaks the contract:
	// not JSON, an unknown status, another ticket than the one asked for,
	// "assigned" without its assignment. Never retried (package
	// ticketapi states the policy both clients follow).
	ErrMalformed = errors.New("malformed answer from the server")
	// ErrAssignmentURL: an assignment whose URL is not an absolute
	// http(s) URL (javascript:, file:, data:, ws:, relative, ...:
	// ticketapi.ValidAssignmentURL), which a game client must never
	// open; it is ErrMalformed too (never retried), as the TypeScript
	// client refuses it.
	ErrAssignmentURL = errors.New("assignment URL is not http(s)")
)

// Error is the frontend's refusal: the HTTP status, the error body and
// the Retry-After it asked for.
type Error struct {
	Status int
	Body   ticketapi.ErrorBody
	// RetryAfter is the header's wait (0 without one).
	RetryAfter time.Duration
	// Ticket is the ticket's state when a cancel came too late (409).
	Ticket *ticketapi.View
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("quickmatch: %d %s", e.Status, e.Body.Error)
	if d := e.Body.Drained; d != nil {
		msg += fmt.Sprintf(" (shard %s drained: %s)", d.Shard, d.Reason)
	}
	for _, f := range e.Body.Fields {
		msg += fmt.Sprintf("; %s: %s", f.Field, f.Reason)
	}
	return msg
}

// Is matches the sentinel of e's refusal.
func (e *Error) Is(target error) bool { return e.kind() == target }

func (e *Error) kind() error {
	switch e.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return ErrInvalid
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrConflict
	case http.StatusTooManyRequests:
		return ErrRateLimited
	}
	switch {
	case e.Status < 500:
		return nil
	case e.Body.Drained != nil:
		return ErrDrained
	case e.Body.Overloaded():
		return ErrOverloaded
	case e.Body.RegionFull():
		return ErrRegionFull
	}
	return ErrUnavailable
}

// retryable: a refusal of an event stream that asking again may mend
// (Follow resumes it). A creation is sent again by Retryable's narrower
// rule, the TypeScript client's.
func (e *Error) retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 || e.Status == http.StatusRequestTimeout
}

// Retryable reports whether the same request, sent again (a creation
// with the same Idempotency-Key), may be taken: a 408, 429, 500, 502, 503
// or 504, but not a 503 that names a drained shard or a region with room
// (suggest_region), which would be refused the same for minutes. It is
// the TypeScript client's ApiError.retryable, word for word, which its
// create retries by.
func (e *Error) Retryable() bool {
	switch e.Status {
	case http.StatusServiceUnavailable:
		return e.Body.Drained == nil && e.Body.SuggestRegion == ""
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// readError reads a refusal's body (at most limit bytes; a body that is
// not the contract's keeps its status, its text is left out).
func readError(res *http.Response, limit int64) *Error {
	e := &Error{Status: res.StatusCode, RetryAfter: retryAfter(res.Header.Get(ticketapi.HeaderRetryAfter), time.Now())}
	data, _ := io.ReadAll(io.LimitReader(res.Body, limit))
	var body struct {
		ticketapi.ErrorBody
		ticketapi.View
	}
	if json.Unmarshal(data, &body) == nil {
		e.Body = body.ErrorBody
		if res.StatusCode == http.StatusConflict && body.Status != "" {
			e.Ticket = &body.View
		}
	}
	if e.Body.Error == "" {
		e.Body.Error = http.StatusText(res.StatusCode)
	}
	return e
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date; 0 for
// none or nonsense.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 1<<20)) * time.Second // a hostile value must not overflow
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
