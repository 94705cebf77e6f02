package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
)

// ErrNoIdentity: the frontend was given no way to tell its callers apart
// and was not told to run without one.
var ErrNoIdentity = errors.New("no identity provider: give -auth-jwks-url, -auth-public-keys or -auth-dev-issuer-key, or -auth-insecure to trust every caller")

// authFlags are the identity flags (env: AUTH_ISSUER and so on).
type authFlags struct {
	issuer, audience, jwksURL, publicKeys string
	playerClaim, serverScope, devKey      string
	ticketClaim                           string
	insecure                              bool
	// tokenCacheSize is identity.Config.TokenCacheSize.
	tokenCacheSize int
}

func (f *authFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.issuer, "auth-issuer", "", "the iss every token must carry (required with -auth-jwks-url or -auth-public-keys; default "+identity.DevIssuerName+" with only the development issuer)")
	fs.StringVar(&f.audience, "auth-audience", "", "a value the aud of every token must hold (default "+identity.DevAudience+")")
	fs.StringVar(&f.jwksURL, "auth-jwks-url", "", "URL of the identity provider's JSON Web Key Set (read at start, refreshed every 5 min, and at most every 30 s when a token names an unknown kid)")
	fs.StringVar(&f.publicKeys, "auth-public-keys", "", "PEM files of trusted public keys (RSA, P-256, Ed25519), comma-separated")
	fs.StringVar(&f.playerClaim, "auth-player-claim", identity.DefaultPlayerClaim, "claim holding the player id")
	fs.StringVar(&f.ticketClaim, "auth-ticket-claim", "", `claim every player token must hold with the player's skill and attributes, {"skill":1850,"attributes":{...}}: a player's requests may repeat them, not change them (empty: a player says its own)`)
	fs.StringVar(&f.serverScope, "auth-server-scope", identity.DefaultServerScope, "a token whose space-separated scope claim holds this is the server role: it may queue, read and cancel for any player")
	fs.StringVar(&f.devKey, "auth-dev-issuer-key", "", "development only: Ed25519 private key PEM file (created if missing) of a built-in issuer at POST /dev/token, for loopback clients; the frontend then must listen on a loopback address")
	fs.IntVar(&f.tokenCacheSize, "auth-token-cache-size", identity.DefaultTokenCacheSize, "verified tokens remembered (about 270 bytes each, more with a ticket claim's attributes), so that a token presented again within a minute skips its signature check (negative: no cache)")
	fs.BoolVar(&f.insecure, "auth-insecure", false, "no identity at all: every caller may queue, read and cancel for any player (tests and trusted networks only)")
}

// check refuses impossible combinations before anything starts.
func (f *authFlags) check(httpAddr string) error {
	external := f.jwksURL != "" || f.publicKeys != ""
	var errs []error
	if f.insecure && (external || f.devKey != "") {
		errs = append(errs, errors.New("-auth-insecure together with identity flags: choose one"))
	}
	if !f.insecure && !external && f.devKey == "" {
		errs = append(errs, ErrNoIdentity)
	}
	// A claim no token can carry refuses every player (the development
	// issuer's tokens have none), and without identity it would be
	// ignored: either is a mistake to say at start, not at each request.
	if f.ticketClaim != "" && (f.insecure || f.devKey != "") {
		errs = append(errs, errors.New("-auth-ticket-claim needs an identity provider that puts it in tokens: not with -auth-insecure or -auth-dev-issuer-key"))
	}
	if external && f.issuer == "" {
		errs = append(errs, errors.New("-auth-issuer is required with -auth-jwks-url or -auth-public-keys"))
	}
	if f.devKey != "" {
		if err := identity.CheckLoopbackListen(httpAddr); err != nil {
			errs = append(errs, fmt.Errorf("-auth-dev-issuer-key: %w", err))
		}
	}
	return errors.Join(errs...)
}

// apply builds the verifier (and the development issuer) into cfg.
func (f *authFlags) apply(ctx context.Context, cfg *api.Config, log *slog.Logger) error {
	if f.insecure {
		cfg.Insecure = true
		log.Warn("identity is off (-auth-insecure): every caller may act for any player")
		return nil
	}
	vc := identity.Config{
		Issuer: f.issuer, Audience: f.audience, JWKSURL: f.jwksURL,
		PlayerClaim: f.playerClaim, TicketClaim: f.ticketClaim, ServerScope: f.serverScope, Log: log,
		TokenCacheSize: f.tokenCacheSize,
	}
	if vc.Issuer == "" {
		vc.Issuer = identity.DevIssuerName
	}
	if vc.Audience == "" {
		vc.Audience = identity.DevAudience
	}
	for _, p := range strings.Split(f.publicKeys, ",") {
		if p = strings.TrimSpace(p); p != "" {
			vc.KeyFiles = append(vc.KeyFiles, p)
		}
	}
	if f.devKey != "" {
		dev, err := identity.NewDevIssuer(f.devKey, vc.Issuer, vc.Audience)
		if err != nil {
			return fmt.Errorf("development issuer: %w", err)
		}
		vc.Keys = append(vc.Keys, dev.Public())
		cfg.DevIssuer = dev
		log.Warn("development issuer on: POST /dev/token gives loopback clients a token for any player")
	}
	v, err := identity.New(ctx, vc)
	if err != nil {
		return fmt.Errorf("token verifier: %w", err)
	}
	cfg.Auth = v
	return nil
}

// parsePrefixes reads comma-separated CIDRs (a bare address is one host).
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("-trusted-proxies: %q: %w", f, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
