package identity

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"
)

// newKeyfunc finds keys by kid: among static alone, or, with a JWKS URL,
// among static and the JWKS, read now and kept fresh. It is
// keyfunc.NewDefaultOverrideCtx built by hand for one reason: the JWKS is
// kept in a store that counts its changes in gen, which is how the token
// cache learns that a key it vouched for may be gone.
func newKeyfunc(ctx context.Context, cfg Config, static jwkset.Storage, gen *atomic.Uint64) (keyfunc.Keyfunc, error) {
	if cfg.JWKSURL == "" {
		return keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: static})
	}
	remote, err := jwkset.NewStorageFromHTTP(cfg.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:                    cfg.HTTPClient,
		Ctx:                       ctx,
		HTTPTimeout:               cfg.HTTPClient.Timeout,
		NoErrorReturnFirstHTTPReq: false, // fail now if the JWKS cannot be read
		RefreshErrorHandler: func(ctx context.Context, err error) {
			cfg.Log.WarnContext(ctx, "JWKS refresh failed; the keys read before stay in use", "url", cfg.JWKSURL, "err", err)
		},
		RefreshInterval: cfg.Refresh,
		Storage:         countingStorage{Storage: jwkset.NewMemoryStorage(), gen: gen},
	})
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", cfg.JWKSURL, err)
	}
	// Bounds both the wait for the limiter and the read of the JWKS it
	// allows: a token naming an unknown kid while the limiter would need
	// longer is refused at once. keyfunc's default for a client with no
	// timeout.
	waitMax := cfg.HTTPClient.Timeout
	if waitMax <= 0 {
		waitMax = time.Minute
	}
	storage, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		Given:             static,
		HTTPURLs:          map[string]jwkset.Storage{cfg.JWKSURL: remote},
		RateLimitWaitMax:  waitMax,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.UnknownKIDEvery), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", cfg.JWKSURL, err)
	}
	return keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: storage})
}

// countingStorage is a key store that adds one to gen after each change,
// after the change itself: whoever reads the new count then also reads
// the new keys.
type countingStorage struct {
	jwkset.Storage
	gen *atomic.Uint64
}

func (s countingStorage) KeyDelete(ctx context.Context, kid string) (bool, error) {
	ok, err := s.Storage.KeyDelete(ctx, kid)
	s.gen.Add(1)
	return ok, err
}

func (s countingStorage) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	err := s.Storage.KeyReplaceAll(ctx, given)
	s.gen.Add(1)
	return err
}

func (s countingStorage) KeyWrite(ctx context.Context, jwk jwkset.JWK) error {
	err := s.Storage.KeyWrite(ctx, jwk)
	s.gen.Add(1)
	return err
}
