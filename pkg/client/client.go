package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// TokenSource gives the bearer token of a request ("" sends none). It is
// asked before every request; refused is "" then, and the token the
// frontend just refused (401) when it is asked once more: a source that
// caches tokens must then hand out a fresh one, or return refused again
// to say it has none (the 401 is then the answer, not sent again).
type TokenSource func(ctx context.Context, refused string) (string, error)

// Config of a Client. Only BaseURL is required.
type Config struct {
	// BaseURL is the frontend's, e.g. http://127.0.0.1:3000.
	BaseURL string
	// HTTPClient sends every request (h2c, source addresses, TLS: the
	// caller's choice). Nil: a client of its own. Its Timeout, if any,
	// bounds event streams too, so leave it 0 and use contexts. Its
	// CheckRedirect is not used: the client never follows a redirect
	// (noRedirect).
	HTTPClient *http.Client
	// Token gives each request's bearer token; nil: none is sent.
	Token TokenSource
	// MaxEventBytes bounds one Server-Sent Event, one WebSocket message
	// and one JSON answer; default 64 KiB (a ticket's view is a few
	// hundred bytes).
	MaxEventBytes int
	// IdleTimeout drops an event stream that sent nothing, not even its
	// heartbeat (every 15 s), for this long (checked once per period, so
	// up to twice this long); it is then resumed. A WebSocket silent for
	// this long ends. Default 45 s.
	IdleTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before a reconnection
	// (doubling, with jitter); defaults 250 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter caps a server's Retry-After (then waited and up to
	// half again, as every one is); default 1 minute.
	MaxRetryAfter time.Duration
	// Dialer opens Queue's WebSockets; nil: websocket.DefaultDialer's
	// settings.
	Dialer *websocket.Dialer
}

// Defaults of Config.
const (
	DefaultMaxEventBytes = 64 << 10
	DefaultIdleTimeout   = 45 * time.Second
	DefaultMinBackoff    = 250 * time.Millisecond
	DefaultMaxBackoff    = 10 * time.Second
	DefaultMaxRetryAfter = time.Minute
)

func (c *Config) setDefaults() {
	hc := http.Client{}
	if c.HTTPClient != nil {
		hc = *c.HTTPClient // a copy: the caller's client is left as it is
	}
	hc.CheckRedirect = noRedirect
	c.HTTPClient = &hc
	if c.MaxEventBytes <= 0 {
		c.MaxEventBytes = DefaultMaxEventBytes
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = DefaultMaxRetryAfter
	}
}

// Client talks to one frontend (or a load balancer in front of several:
// any frontend answers for any ticket).
type Client struct {
	cfg  Config
	base string
	// sleep waits between reconnections until ctx ends (package sleep).
	sleep func(ctx context.Context, d time.Duration) error
}

// New checks cfg and returns its client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("quickmatch client: base URL %q: want http(s)://host[:port]", cfg.BaseURL)
	}
	cfg.setDefaults()
	return &Client{cfg: cfg, base: u.String(), sleep: sleep}, nil
}

// WithToken is c acting with another token source (a game backend, or a
// load tool, acting for many players on one connection pool).
func (c *Client) WithToken(t TokenSource) *Client {
	cp := *c
	cp.cfg.Token = t
	return &cp
}

// CreateOption sets a header of a creation.
type CreateOption func(http.Header)

// IdempotencyKey makes a repeat of the creation (same key, same caller)
// answer the same ticket and never queue a second one.
func IdempotencyKey(key string) CreateOption {
	return func(h http.Header) { h.Set(ticketapi.HeaderIdempotencyKey, key) }
}

// Repeat marks a keyed creation sent again after an attempt that may
// have made its ticket (MayHaveCreated): a frontend past its limit
// answers it from that ticket rather than refusing it for overload
// (ticketapi.HeaderRepeat).
func Repeat() CreateOption {
	return func(h http.Header) { h.Set(ticketapi.HeaderRepeat, "1") }
}

// MayHaveCreated reports whether a creation that failed with err may
// have made its ticket: every failure but a refusal that says nothing
// was made (ticketapi.CreatedNothing). Every later attempt, with the
// same Idempotency-Key, is sent with Repeat.
func MayHaveCreated(err error) bool {
	var refused *Error
	return !errors.As(err, &refused) || !ticketapi.CreatedNothing(refused.Status, refused.Body)
}

// CorrelationID names the request in every service's logs.
func CorrelationID(id string) CreateOption {
	return func(h http.Header) { h.Set(ticketapi.HeaderCorrelationID, id) }
}

// TraceParent sends a W3C trace context (traceparent: "00-<trace id>-<span
// id>-<flags>"): the frontend's create span, and every span of the
// ticket after it, joins the caller's trace. One the frontend cannot
// read is ignored there, not refused.
func TraceParent(tp string) CreateOption {
	return func(h http.Header) { h.Set(ticketapi.HeaderTraceParent, tp) }
}

// Create queues a ticket: its view (status queued) once the frontend took
// it (202), or an *Error. It is not retried: a caller that retries after
// Error.RetryAfter should give an IdempotencyKey, and Repeat once
// MayHaveCreated says an attempt may have made the ticket.
func (c *Client) Create(ctx context.Context, req ticketapi.Request, opts ...CreateOption) (ticketapi.View, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return ticketapi.View{}, fmt.Errorf("quickmatch create: %w", err)
	}
	res, err := c.do(ctx, http.MethodPost, ticketapi.PathTickets, body, func(h http.Header) {
		h.Set("Content-Type", "application/json")
		for _, o := range opts {
			o(h)
		}
	})
	if err != nil {
		return ticketapi.View{}, fmt.Errorf("quickmatch create: %w", err)
	}
	return c.view(res, http.StatusAccepted, "")
}

// Get is where a ticket stands now.
func (c *Client) Get(ctx context.Context, ticketID string) (ticketapi.View, error) {
	res, err := c.do(ctx, http.MethodGet, ticketapi.TicketPath(url.PathEscape(ticketID)), nil, nil)
	if err != nil {
		return ticketapi.View{}, fmt.Errorf("quickmatch get %s: %w", ticketID, err)
	}
	return c.view(res, http.StatusOK, ticketID)
}

// Cancel cancels a ticket; a cancelled ticket is never matched. Too late
// (it was matched, assigned, expired or failed) is an *Error matching
// ErrConflict whose Ticket says where it stands. Cancelling twice is fine.
func (c *Client) Cancel(ctx context.Context, ticketID string) (ticketapi.View, error) {
	res, err := c.do(ctx, http.MethodDelete, ticketapi.TicketPath(url.PathEscape(ticketID)), nil, nil)
	if err != nil {
		return ticketapi.View{}, fmt.Errorf("quickmatch cancel %s: %w", ticketID, err)
	}
	return c.view(res, http.StatusOK, ticketID)
}

// view reads the view of ticket id ("": any) from an answer of status
// want, or its error; a view that breaks the contract is ErrMalformed.
func (c *Client) view(res *http.Response, want int, id string) (ticketapi.View, error) {
	defer res.Body.Close()
	if res.StatusCode != want {
		return ticketapi.View{}, readError(res, int64(c.cfg.MaxEventBytes))
	}
	var v ticketapi.View
	if err := decodeJSON(res.Body, c.cfg.MaxEventBytes, &v); err != nil {
		return ticketapi.View{}, err
	}
	if err := checkView(&v, id); err != nil {
		return ticketapi.View{}, fmt.Errorf("quickmatch: %w", err)
	}
	return v, nil
}

// decodeJSON decodes at most limit bytes of r into v.
func decodeJSON(r io.Reader, limit int, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	switch {
	case err != nil:
		return fmt.Errorf("quickmatch: read answer: %w", err)
	case len(data) > limit:
		return fmt.Errorf("quickmatch: answer over %d bytes: %w", limit, ErrTooLarge)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("quickmatch: %w: %w", ErrMalformed, err)
	}
	return nil
}

// do sends a request with the caller's token; a 401 asks the token
// source once more (naming the refused token) and sends it again once.
// set, if not nil, adds headers.
func (c *Client) do(ctx context.Context, method, path string, body []byte, set func(http.Header)) (*http.Response, error) {
	tok, err := c.token(ctx, "")
	if err != nil {
		return nil, err
	}
	for retried := false; ; retried = true {
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if set != nil {
			set(req.Header)
		}
		if tok != "" {
			req.Header.Set(ticketapi.HeaderAuthorization, "Bearer "+tok)
		}
		res, err := c.cfg.HTTPClient.Do(req)
		if err != nil || res.StatusCode != http.StatusUnauthorized || retried || c.cfg.Token == nil {
			return res, err
		}
		fresh, err := c.token(ctx, tok)
		if err != nil {
			res.Body.Close()
			return nil, err
		}
		if fresh == tok {
			return res, nil // nothing fresher: the 401 is the answer
		}
		// Read a little of the refusal so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
		res.Body.Close()
		tok = fresh
	}
}

// noRedirect makes a 3xx the answer (an *Error), never followed: the
// frontend never redirects, and following one would send the bearer
// token wherever it points (net/http drops it for another host, not for
// another port or scheme of the same one).
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// ErrToken wraps what the token source returned.
var ErrToken = errors.New("token source")

func (c *Client) token(ctx context.Context, refused string) (string, error) {
	if c.cfg.Token == nil {
		return "", nil
	}
	tok, err := c.cfg.Token(ctx, refused)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrToken, err)
	}
	return tok, nil
}
