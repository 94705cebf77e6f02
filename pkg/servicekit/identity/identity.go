package identity

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

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
	var kf keyfunc.Keyfunc
	var err error
	if cfg.JWKSURL == "" {
		kf, err = keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: static})
	} else {
		first := false // fail now if the JWKS cannot be read
		kf, err = keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
			Client:                    cfg.HTTPClient,
			Given:                     static,
			HTTPTimeout:               cfg.HTTPClient.Timeout,
			NoErrorReturnFirstHTTPReq: &first,
			RefreshInterval:           cfg.Refresh,
			RefreshUnknownKID:         rate.NewLimiter(rate.Every(cfg.UnknownKIDEvery), 1),
			// Bounds both the wait for the limiter and the read of the
			// JWKS it allows: a token naming an unknown kid while the
			// limiter would need longer is refused at once.
			RateLimitWaitMax: cfg.HTTPClient.Timeout,
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(ctx context.Context, err error) {
					cfg.Log.WarnContext(ctx, "JWKS refresh failed; the keys read before stay in use", "url", u, "err", err)
				}
			},
		})
	}
	if err != nil {
		return nil, fmt.Errorf("%w: keys: %w", ErrConfig, err)
	}
	return &Verifier{
		cfg:    cfg,
		keys:   kf,
		static: set,
		parser: jwt.NewParser(
			jwt.WithValidMethods(Algorithms),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(cfg.Leeway),
		),
	}, nil
}

// Verify checks a raw token and says who it speaks for.
func (v *Verifier) Verify(ctx context.Context, raw string) (Caller, error) {
	if raw == "" {
		return Caller{}, ErrNoToken
	}
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(raw, claims, v.keyfunc(ctx)); err != nil {
		return Caller{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
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
