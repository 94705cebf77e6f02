package identity

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// Errors callers branch on. Every verification failure wraps ErrUnauthorized.
var (
	// ErrUnauthorized: no acceptable credential; answer 401.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNoToken: the request carries no bearer token.
	ErrNoToken = fmt.Errorf("%w: no bearer token", ErrUnauthorized)
	// ErrInvalidToken: a token was given and refused (signature, algorithm,
	// key, issuer, audience, time window or claims).
	ErrInvalidToken = fmt.Errorf("%w: invalid token", ErrUnauthorized)
	// ErrConfig: the verifier cannot be built from its configuration.
	ErrConfig = errors.New("identity configuration")
)

// Algorithms a token may be signed with: asymmetric only. "none" and the
// HMAC family are never accepted, which rules out algorithm confusion (a
// token "signed" with HS256 using a public key as the secret).
var Algorithms = []string{"RS256", "ES256", "EdDSA"}

// Defaults of a Config.
const (
	// DefaultPlayerClaim holds the player id.
	DefaultPlayerClaim = "sub"
	// DefaultServerScope in a token's space-separated "scope" claim makes
	// its bearer the server role.
	DefaultServerScope = "matchmaking:server"
	// DefaultLeeway absorbs clock skew between the issuer and the frontend.
	DefaultLeeway = 30 * time.Second
	// DefaultRefresh is how often keys are read again from a JWKS URL.
	DefaultRefresh = 5 * time.Minute
	// DefaultUnknownKIDEvery bounds the extra JWKS reads that tokens naming
	// an unknown key id trigger (a new key served before the next refresh).
	DefaultUnknownKIDEvery = 30 * time.Second
	// DefaultTokenCacheSize is how many verified tokens a Verifier
	// remembers: a ticket's token is checked twice within milliseconds
	// (its POST, then its event stream), and 16,384 entries of about
	// 270 bytes with their maps (4.3 MiB, BenchmarkTokenCacheChurn; a
	// ticket claim's attributes add theirs) cover well over a second of
	// 10,000 new tokens/s.
	DefaultTokenCacheSize = 16384
	// MaxTokenCacheSize bounds a configured cache: its ring of keys is
	// allocated whole at start (32 bytes an entry, 128 MiB here), so a
	// mistyped size fails at the flag, not as an out-of-memory crash.
	MaxTokenCacheSize = 1 << 22
	// DefaultTokenCacheMaxAge is the longest a verified token is taken
	// from the cache before it is checked in full again.
	DefaultTokenCacheMaxAge = time.Minute
)

// StaticKey is a trusted public key with its key id.
type StaticKey struct {
	ID  string
	Key crypto.PublicKey
}

// Config of a Verifier.
type Config struct {
	// Issuer is the required "iss" claim. Required.
	Issuer string
	// Audience is a value the "aud" claim must hold. Required.
	Audience string
	// JWKSURL serves the issuer's keys (JSON Web Key Set); optional when
	// Keys or KeyFiles are given.
	JWKSURL string
	// KeyFiles are PEM files of trusted public keys, each known by KeyID.
	KeyFiles []string
	// Keys are trusted public keys given in code (the development issuer's).
	Keys []StaticKey
	// PlayerClaim names the claim holding the player id; default "sub".
	PlayerClaim string
	// TicketClaim, if set, names a claim every player token must hold:
	// the player's skill and attributes as the identity provider says
	// them (TicketClaim's JSON), which the player's own requests may
	// repeat but not change. Empty: a player says its own.
	TicketClaim string
	// ServerScope in the "scope" claim makes the server role; default
	// "matchmaking:server".
	ServerScope string
	// Leeway for exp, nbf and iat; default 30 s. Negative means none.
	Leeway time.Duration
	// Refresh is how often the JWKS is read again; default 5 min.
	Refresh time.Duration
	// UnknownKIDEvery is the least time between two reads of the JWKS that
	// a token with an unknown key id triggers; default 30 s.
	UnknownKIDEvery time.Duration
	// HTTPClient fetches the JWKS; default a client with a 10 s timeout.
	HTTPClient *http.Client
	// Log reports failed JWKS refreshes; default slog.Default().
	Log *slog.Logger
	// TokenCacheSize is how many verified tokens are remembered so that
	// the same token presented again skips its signature check; default
	// DefaultTokenCacheSize, negative means no cache.
	TokenCacheSize int
	// TokenCacheMaxAge is the longest a token is remembered (never past
	// its exp); default DefaultTokenCacheMaxAge.
	TokenCacheMaxAge time.Duration
}

func (c *Config) setDefaults() {
	if c.PlayerClaim == "" {
		c.PlayerClaim = DefaultPlayerClaim
	}
	if c.ServerScope == "" {
		c.ServerScope = DefaultServerScope
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	c.Leeway = max(c.Leeway, 0)
	if c.Refresh <= 0 {
		c.Refresh = DefaultRefresh
	}
	if c.UnknownKIDEvery <= 0 {
		c.UnknownKIDEvery = DefaultUnknownKIDEvery
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.TokenCacheSize == 0 {
		c.TokenCacheSize = DefaultTokenCacheSize
	}
	if c.TokenCacheMaxAge <= 0 {
		c.TokenCacheMaxAge = DefaultTokenCacheMaxAge
	}
}

// Validate reports every configuration error at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, fmt.Errorf("%w: an issuer is required", ErrConfig))
	}
	if c.Audience == "" {
		errs = append(errs, fmt.Errorf("%w: an audience is required", ErrConfig))
	}
	if c.JWKSURL == "" && len(c.KeyFiles) == 0 && len(c.Keys) == 0 {
		errs = append(errs, fmt.Errorf("%w: no keys: give a JWKS URL or public key files", ErrConfig))
	}
	return errors.Join(errs...)
}

// Caller is who a verified token speaks for.
type Caller struct {
	// PlayerID is the player the token was issued to; empty for a server
	// token without a player claim.
	PlayerID string
	// Server is the server role: it may act for any player.
	Server bool
	// Subject is the token's "sub", naming a server credential.
	Subject string
	// Ticket is a player token's ticket claim (Config.TicketClaim); nil
	// for a server token and when no such claim is configured.
	Ticket *TicketClaim
}

// Key names the caller for per-caller state (idempotency keys, rate
// limits, connection caps): "player:<id>" or "server:<sub>".
func (c Caller) Key() string {
	if c.Server {
		return "server:" + c.Subject
	}
	return "player:" + c.PlayerID
}

// Verifier checks bearer tokens. It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	keys   keyfunc.Keyfunc
	parser *jwt.Parser
	// static are the keys from files and code. A token whose kid names
	// none of the known keys is tried against each of them: an identity
	// provider's own kid for a key handed over as a PEM file is not the
	// KeyID it is filed under.
	static jwt.VerificationKeySet
	// keyGen counts changes to the trusted keys (each JWKS read); a
	// cached token is taken only under the generation it was verified in.
	keyGen *atomic.Uint64
	cache  *tokenCache // nil: no cache
	now    func() time.Time
	// onVerify, if set (tests), is called for each check in full.
	onVerify func()
}

// New builds a Verifier. With a JWKS URL the keys are fetched now (an
// unreachable URL is an error, so a misconfigured frontend does not start)
// and refreshed until ctx ends.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	static := jwkset.NewMemoryStorage()
	keys := slices.Clone(cfg.Keys)
	for _, f := range cfg.KeyFiles {
		pubs, err := LoadPublicKeys(f)
		if err != nil {
			return nil, err
		}
		for _, p := range pubs {
			id, err := KeyID(p)
			if err != nil {
				return nil, err
			}
			keys = append(keys, StaticKey{ID: id, Key: p})
		}
	}
	var set jwt.VerificationKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.Key)
		jwk, err := jwkset.NewJWKFromKey(k.Key, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: k.ID}})
		if err != nil {
			return nil, fmt.Errorf("%w: key %s: %w", ErrConfig, k.ID, err)
		}
		if err := static.KeyWrite(ctx, jwk); err != nil {
			return nil, fmt.Errorf("%w: key %s: %w", ErrConfig, k.ID, err)
		}
	}
	gen := new(atomic.Uint64)
	kf, err := newKeyfunc(ctx, cfg, static, gen)
	if err != nil {
		return nil, fmt.Errorf("%w: keys: %w", ErrConfig, err)
	}
	v := &Verifier{cfg: cfg, keys: kf, static: set, keyGen: gen, now: time.Now}
	if cfg.TokenCacheSize > 0 {
		v.cache = newTokenCache(cfg.TokenCacheSize)
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(Algorithms),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	return v, nil
}

// Verify checks a raw token and says who it speaks for. A token verified
// before (the very same bytes, under the same keys, still inside its
// time window and the cache's max age) is answered from the cache
// without its signature check; anything else is checked in full.
func (v *Verifier) Verify(ctx context.Context, raw string) (Caller, error) {
	if raw == "" {
		return Caller{}, ErrNoToken
	}
	if v.cache == nil {
		c, _, err := v.verify(ctx, raw)
		return c, err
	}
	key := sha256.Sum256([]byte(raw))
	now := v.now()
	// Read before the check, so that keys that change during it make the
	// entry stale rather than tagging it with the new generation.
	gen := v.keyGen.Load()
	if c, ok := v.cache.get(&key, now.UnixNano(), gen); ok {
		return c, nil
	}
	c, w, err := v.verify(ctx, raw)
	if err != nil {
		return Caller{}, err // failures are never remembered
	}
	w.until = min(w.until, now.Add(v.cfg.TokenCacheMaxAge).UnixNano())
	v.cache.put(&key, entry{caller: c, window: w, gen: gen})
	return c, nil
}

// verify checks a token in full: signature, claims, time window. It
// returns the window in which the token stays acceptable.
func (v *Verifier) verify(ctx context.Context, raw string) (Caller, window, error) {
	if v.onVerify != nil {
		v.onVerify()
	}
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(raw, claims, v.keyfunc(ctx)); err != nil {
		return Caller{}, window{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c, err := v.caller(claims)
	if err != nil || v.cache == nil {
		return c, window{}, err
	}
	return c, v.windowOf(claims), nil
}

// caller reads who the verified claims speak for.
func (v *Verifier) caller(claims jwt.MapClaims) (Caller, error) {
	var c Caller
	c.Subject, _ = claims["sub"].(string)
	if scope, ok := claims["scope"].(string); ok {
		c.Server = slices.Contains(strings.Fields(scope), v.cfg.ServerScope)
	}
	id, isString := claims[v.cfg.PlayerClaim].(string)
	if c.Server {
		// A game backend's sub names a credential ("client@clients"), not
		// necessarily a player: it is kept as the player only if it is one.
		if c.Subject == "" {
			return Caller{}, fmt.Errorf("%w: a server token needs a sub", ErrInvalidToken)
		}
		if isString && CheckPlayerID(id) == nil {
			c.PlayerID = id
		}
		return c, nil
	}
	if !isString {
		return Caller{}, fmt.Errorf("%w: claim %q holds no player id", ErrInvalidToken, v.cfg.PlayerClaim)
	}
	if err := CheckPlayerID(id); err != nil {
		return Caller{}, fmt.Errorf("%w: claim %q: %w", ErrInvalidToken, v.cfg.PlayerClaim, err)
	}
	c.PlayerID = id
	if v.cfg.TicketClaim != "" {
		tc, err := ticketClaim(claims, v.cfg.TicketClaim)
		if err != nil {
			return Caller{}, err
		}
		c.Ticket = tc
	}
	return c, nil
}

// keyfunc finds a token's key: by kid among the JWKS and static keys, or
// else each static key in turn. The algorithm is fixed by the parser's
// allowed methods, and each method accepts only its own key type, so
// trying several keys never lets one be used with another algorithm.
func (v *Verifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	byKID := v.keys.KeyfuncCtx(ctx)
	return func(t *jwt.Token) (any, error) {
		k, err := byKID(t)
		if err != nil && len(v.static.Keys) > 0 {
			return v.static, nil
		}
		return k, err
	}
}

// CheckPlayerID accepts a player id the events contract accepts in a
// ticket (it becomes a subject token of results.<player_id>).
func CheckPlayerID(id string) error {
	if err := events.CheckID(id); err != nil {
		return fmt.Errorf("player id %w", err)
	}
	return nil
}

// FromRequest returns the bearer token of a request: the Authorization
// header ("Bearer <token>"), or else the access_token query parameter
// (RFC 6750 section 2.3), which is how browsers' EventSource and WebSocket,
// which cannot set headers, present it.
func FromRequest(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	return r.URL.Query().Get(ticketapi.QueryAccessToken) // the API contract's name
}
