package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/client"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

func newClient(t *testing.T, h http.Handler, tune ...func(*client.Config)) *client.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := client.Config{BaseURL: srv.URL}
	for _, f := range tune {
		f(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// errorBody is b as the frontend writes it.
func errorBody(b ticketapi.ErrorBody) string {
	data, _ := json.Marshal(b) // an ErrorBody always encodes
	return string(data)
}

func answer(status int, retryAfter, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// The frontend's refusals, their texts built as the frontend builds them
// (pkg/ticketapi), come back as an *Error a caller branches on with
// errors.Is: overload, drain and a full region are told apart though all
// are 503s. (services/frontend/internal/api and drain run pkg/client
// against the real frontend's refusals too.)
func TestCreateRefusalsAreTyped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		body       string
		want       error
		check      func(*client.Error) bool
	}{
		{"overloaded", 503, "2", errorBody(ticketapi.ErrorBody{Error: ticketapi.OverloadedError}), client.ErrOverloaded,
			func(e *client.Error) bool { return e.RetryAfter == 2*time.Second }},
		{"drained", 503, "30", errorBody(ticketapi.ErrorBody{Error: ticketapi.DrainedReason("eu.gold", "upgrade"), Drained: &ticketapi.DrainedBody{Shard: "eu.gold", Reason: "upgrade"}}), client.ErrDrained,
			func(e *client.Error) bool {
				return e.Body.Drained != nil && e.Body.Drained.Shard == "eu.gold" && e.Body.Drained.Reason == "upgrade" && e.RetryAfter == 30*time.Second
			}},
		{"region full", 503, "5", errorBody(ticketapi.ErrorBody{Error: ticketapi.RegionFullError("eu", "us"), SuggestRegion: "us"}), client.ErrRegionFull,
			func(e *client.Error) bool { return e.Body.SuggestRegion == "us" }},
		{"unavailable", 503, "1", `{"error":"ticket service unavailable, retry with the same Idempotency-Key"}`, client.ErrUnavailable, nil},
		{"invalid", 400, "", `{"error":"invalid request","fields":[{"field":"skill","reason":"must be 0-10000"}]}`, client.ErrInvalid,
			func(e *client.Error) bool { return len(e.Body.Fields) == 1 && e.Body.Fields[0].Field == "skill" }},
		{"rate limited", 429, "1", `{"error":"too many requests from this client"}`, client.ErrRateLimited, nil},
		{"forbidden", 403, "", `{"error":"a player may queue only for themself"}`, client.ErrForbidden, nil},
		{"not json", 502, "", `<html>bad gateway</html>`, client.ErrUnavailable,
			func(e *client.Error) bool { return e.Status == 502 && e.Body.Error != "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, answer(tc.status, tc.retryAfter, tc.body))
			skill := 1650
			_, err := c.Create(t.Context(), ticketapi.Request{Skill: &skill, Region: "eu"})
			var e *client.Error
			if !errors.As(err, &e) || !errors.Is(err, tc.want) || e.Status != tc.status {
				t.Fatalf("got %v, want an *Error %d matching %v", err, tc.status, tc.want)
			}
			for _, other := range []error{client.ErrOverloaded, client.ErrDrained, client.ErrRegionFull, client.ErrUnavailable} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("%v also matches %v", err, other)
				}
			}
			if tc.check != nil && !tc.check(e) {
				t.Errorf("error %+v", e)
			}
		})
	}
}

// A cancel too late says where the ticket stands.
func TestCancelTooLate(t *testing.T) {
	t.Parallel()
	c := newClient(t, answer(409, "", `{"error":"ticket cannot be cancelled: it is assigned","ticket_id":"t1","status":"assigned"}`))
	_, err := c.Cancel(t.Context(), "t1")
	var e *client.Error
	if !errors.Is(err, client.ErrConflict) || !errors.As(err, &e) || e.Ticket == nil || e.Ticket.Status != events.StatusAssigned {
		t.Fatalf("got %v (%+v)", err, e)
	}
}

// Create sends the request, the token and the idempotency key, and reads
// the 202's view.
func TestCreateSendsWhatTheFrontendReads(t *testing.T) {
	t.Parallel()
	var got *http.Request
	var body string
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got, body = r, string(b)
		answer(202, "", `{"ticket_id":"t1","status":"queued","region":"eu","tier":"gold","mode":"1v1","expected_wait_ms":1200}`)(w, r)
	}), func(cfg *client.Config) {
		cfg.Token = func(context.Context, string) (string, error) { return "tok", nil }
	})
	skill := 1650
	v, err := c.Create(t.Context(), ticketapi.Request{PlayerID: "alice", Skill: &skill, Region: "eu"}, client.IdempotencyKey("k1"))
	if err != nil || v.TicketID != "t1" || v.Status != events.StatusQueued || v.ExpectedWaitMS != 1200 {
		t.Fatalf("create: %+v %v", v, err)
	}
	if got.Method != http.MethodPost || got.URL.Path != "/v1/tickets" || got.Header.Get("Authorization") != "Bearer tok" ||
		got.Header.Get("Idempotency-Key") != "k1" || body != `{"player_id":"alice","skill":1650,"region":"eu"}` {
		t.Fatalf("sent %s %s %v %s", got.Method, got.URL, got.Header, body)
	}
}

// A 401 asks the token source once more, naming the refused token, and
// the request goes again once: a second 401 is the caller's.
func TestUnauthorizedRefreshesTheTokenOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		accepted string
		want     error
		requests int32
	}{
		{"refreshed token taken", "fresh", nil, 2},
		{"refreshed token refused too", "never", client.ErrUnauthorized, 2},
		{"nothing fresher", "never", client.ErrUnauthorized, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var requests atomic.Int32
			var mu sync.Mutex
			var asked []string
			c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				if r.Header.Get("Authorization") != "Bearer "+tc.accepted {
					answer(401, "", `{"error":"a valid bearer token is required"}`)(w, r)
					return
				}
				answer(200, "", `{"ticket_id":"t1","status":"queued"}`)(w, r)
			}), func(cfg *client.Config) {
				cfg.Token = func(_ context.Context, refused string) (string, error) {
					mu.Lock()
					defer mu.Unlock()
					asked = append(asked, refused)
					if refused == "" || tc.requests == 1 {
						return "stale", nil
					}
					return "fresh", nil
				}
			})
			_, err := c.Get(t.Context(), "t1")
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if n := requests.Load(); n != tc.requests || fmt.Sprint(asked) != "[ stale]" {
				t.Fatalf("%d requests, token source asked with %q", n, asked)
			}
		})
	}
}

// A token source's failure ends the call, wrapped.
func TestTokenSourceError(t *testing.T) {
	t.Parallel()
	boom := errors.New("identity provider down")
	c := newClient(t, answer(200, "", `{}`), func(cfg *client.Config) {
		cfg.Token = func(context.Context, string) (string, error) { return "", boom }
	})
	if _, err := c.Follow(t.Context(), "t1", nil); !errors.Is(err, boom) || !errors.Is(err, client.ErrToken) {
		t.Fatalf("got %v", err)
	}
}

// The caller's *http.Client sends every request.
func TestCallersHTTPClient(t *testing.T) {
	t.Parallel()
	var used atomic.Int32
	c := newClient(t, answer(200, "", `{"ticket_id":"t1","status":"cancelled"}`), func(cfg *client.Config) {
		cfg.HTTPClient = &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			used.Add(1)
			return http.DefaultTransport.RoundTrip(r)
		})}
	})
	if _, err := c.Cancel(t.Context(), "t1"); err != nil || used.Load() != 1 {
		t.Fatalf("cancel: %v, the caller's client sent %d", err, used.Load())
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A JSON answer above the bound is refused, not read whole.
func TestAnswerOverTheBound(t *testing.T) {
	t.Parallel()
	c := newClient(t, answer(200, "", `{"ticket_id":"`+strings.Repeat("x", 4096)+`","status":"queued"}`), func(cfg *client.Config) {
		cfg.MaxEventBytes = 1024
	})
	if _, err := c.Get(t.Context(), "t1"); !errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
}

func TestNewRefusesABadBaseURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "127.0.0.1:3000", "ftp://x", "http://"} {
		if _, err := client.New(client.Config{BaseURL: u}); err == nil {
			t.Errorf("base URL %q taken", u)
		}
	}
}
