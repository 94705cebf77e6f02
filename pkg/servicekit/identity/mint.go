package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults of the tokens the project signs itself (the development issuer,
// the load tool, tests): a frontend that trusts such a key with no
// -auth-issuer or -auth-audience expects these.
const (
	DevIssuerName = "quickmatch-dev"
	DevAudience   = "quickmatch"
)

// Minter signs tokens with an Ed25519 private key (EdDSA), its key id in
// the kid header. The load tool and the tests use it; the development
// issuer is one.
type Minter struct {
	Issuer   string
	Audience string
	// TTL is the lifetime of a token; default 1 h.
	TTL time.Duration

	key ed25519.PrivateKey
	kid string
	now func() time.Time
}

// NewMinter returns a Minter for a private key.
func NewMinter(key ed25519.PrivateKey, issuer, audience string) (*Minter, error) {
	kid, err := KeyID(key.Public())
	if err != nil {
		return nil, err
	}
	return &Minter{Issuer: issuer, Audience: audience, TTL: time.Hour, key: key, kid: kid, now: time.Now}, nil
}

// NewMinterFile returns a Minter for the Ed25519 private key PEM file path.
func NewMinterFile(path, issuer, audience string) (*Minter, error) {
	key, err := LoadPrivateKey(path)
	if err != nil {
		return nil, err
	}
	return NewMinter(key, issuer, audience)
}

// Public is the key to trust for the Minter's tokens, with its id.
func (m *Minter) Public() StaticKey { return StaticKey{ID: m.kid, Key: m.key.Public()} }

// Player signs a token for a player.
func (m *Minter) Player(playerID string) (string, error) {
	return m.Sign(jwt.MapClaims{"sub": playerID})
}

// Server signs a server-role token for a game backend named sub.
func (m *Minter) Server(sub, scope string) (string, error) {
	if scope == "" {
		scope = DefaultServerScope
	}
	return m.Sign(jwt.MapClaims{"sub": sub, "scope": scope})
}

// Sign signs claims, adding iss, aud, iat, nbf, exp and jti where absent.
func (m *Minter) Sign(claims jwt.MapClaims) (string, error) {
	now := m.now()
	ttl := m.TTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	var jti [8]byte
	_, _ = rand.Read(jti[:]) // crypto/rand.Read never fails (Go 1.24+)
	for k, v := range map[string]any{
		"iss": m.Issuer, "aud": m.Audience, "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(ttl).Unix(), "jti": hex.EncodeToString(jti[:]),
	} {
		if _, ok := claims[k]; !ok {
			claims[k] = v
		}
	}
	t := jwt.NewWithClaims(edDSA, claims)
	t.Header["kid"] = m.kid
	s, err := t.SignedString(m.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}
