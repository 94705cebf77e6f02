package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/ratelimit"
)

// DefaultTrustedProxies are believed when TrustProxy is set and no
// TrustedProxies are given: loopback and the private ranges a cluster's
// load balancers and ingress controllers use.
var DefaultTrustedProxies = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("fc00::/7"),
}

// insecureCaller is every caller when identity is off: the server role,
// as every client was before identity existed.
var insecureCaller = identity.Caller{Server: true, Subject: "insecure"}

// authed is a handler that knows its caller.
type authed func(w http.ResponseWriter, r *http.Request, c identity.Caller)

// authenticate finds the caller of every request of h and answers 401 to
// a request without a valid token. With limit, the per-client rate limit
// applies first to the client (the player when the token is good, the
// address otherwise, so a flood of bad tokens is limited too).
func (a *API) authenticate(limit bool, h authed) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c, ok := a.identify(r.Context(), w, r, limit); ok {
			h(w, r, c)
		}
	}
}

// identify finds the caller of r, its token verified within ctx, and
// with limit applies the rate limit; ok false means it answered 401 or 429.
func (a *API) identify(ctx context.Context, w http.ResponseWriter, r *http.Request, limit bool) (identity.Caller, bool) {
	c, err := a.caller(ctx, r)
	if limit && !a.allow(w, r, c, err == nil) {
		return c, false
	}
	if err != nil {
		challenge := `Bearer realm="quickmatch"`
		if !errors.Is(err, identity.ErrNoToken) {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		a.reject(w, "unauthorized", http.StatusUnauthorized, ErrorBody{Error: "a valid bearer token is required (" + ticketapi.HeaderAuthorization + ": Bearer, or " + ticketapi.QueryAccessToken + " for EventSource and WebSocket)"})
		return c, false
	}
	return c, true
}

func (a *API) caller(ctx context.Context, r *http.Request) (identity.Caller, error) {
	if a.cfg.Insecure {
		return insecureCaller, nil
	}
	return a.cfg.Auth.Verify(ctx, identity.FromRequest(r))
}

// clientKey names the client for its rate limit and connection cap: the
// authenticated caller, else its address.
func (a *API) clientKey(r *http.Request, c identity.Caller, authenticated bool) string {
	if authenticated && !a.cfg.Insecure {
		return c.Key()
	}
	return "addr:" + a.clientAddr(r)
}

// allow applies the rate limit; false means it answered 429. A server
// credential has none: it is a game backend queueing for many players
// (a launch day's parties), which a player's 20 a second would refuse;
// what it may cost is overload control's to bound.
func (a *API) allow(w http.ResponseWriter, r *http.Request, c identity.Caller, authenticated bool) bool {
	if authenticated && c.Server && !a.cfg.Insecure {
		return true
	}
	return a.within(w, a.limiter, a.clientKey(r, c, authenticated), "too many requests from this client")
}

// allowCreation applies a player's limit of creations; false means it
// answered 429. A server credential, or no identity, has none.
func (a *API) allowCreation(w http.ResponseWriter, c identity.Caller) bool {
	if c.Server || a.cfg.Insecure {
		return true
	}
	return a.within(w, a.creations, c.Key(), "too many tickets from this player")
}

// within takes a request of key from lim; false means it answered 429,
// with when to ask again.
func (a *API) within(w http.ResponseWriter, lim *ratelimit.Limiter, key, why string) bool {
	ok, wait := lim.Allow(key, a.now())
	if !ok {
		w.Header().Set(ticketapi.HeaderRetryAfter, strconv.Itoa(int(wait/time.Second)+1))
		a.reject(w, "rate_limited", http.StatusTooManyRequests, ErrorBody{Error: why})
	}
	return ok
}

// clientAddr is the client's address. Behind trusted proxies (TrustProxy)
// it is the rightmost X-Forwarded-For entry that no trusted proxy wrote:
// each proxy appends the address it was called from, so entries left of
// that are whatever the client sent and prove nothing. The header is
// believed only from a peer that is itself a trusted proxy.
func (a *API) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if !a.cfg.TrustProxy || err != nil || !a.trusted(peer) {
		return host
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	client := host
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		ip, err := netip.ParseAddr(hop)
		if err != nil {
			// Not an address: no proxy wrote it, so whoever did is the
			// client as far as we can tell.
			if len(hop) > 64 {
				hop = hop[:64]
			}
			return hop
		}
		client = ip.Unmap().String()
		if !a.trusted(ip) {
			return client
		}
	}
	return client // every hop is a trusted proxy: the first one
}

func (a *API) trusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range a.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// streams counts each client's open SSE streams and WebSockets.
type streams struct {
	max  int
	mu   sync.Mutex
	open map[string]int
}

// acquire takes one of key's streams; ok is false when it has max open.
func (s *streams) acquire(key string) (release func(), ok bool) {
	if s.max < 0 {
		return func() {}, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[key] >= s.max {
		return nil, false
	}
	s.open[key]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.open[key]--; s.open[key] <= 0 {
			delete(s.open, key)
		}
	}, true
}

// holdStream takes a stream for the caller or answers 429.
func (a *API) holdStream(w http.ResponseWriter, r *http.Request, c identity.Caller) (release func(), ok bool) {
	release, ok = a.streams.acquire(a.clientKey(r, c, true))
	if !ok {
		w.Header().Set(ticketapi.HeaderRetryAfter, "5")
		a.reject(w, "too_many_streams", http.StatusTooManyRequests, ErrorBody{Error: "too many open event streams and WebSockets for this client (at most " + strconv.Itoa(a.streams.max) + ")"})
	}
	return release, ok
}
