package identity_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
)

const (
	iss = "https://auth.example.com/"
	aud = "quickmatch"
)

// jwks is an issuer's key endpoint whose keys a test can rotate.
type jwks struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	keys  map[string]crypto.Signer
	reads int
}

func newJWKS(t *testing.T) *jwks {
	j := &jwks{t: t, keys: map[string]crypto.Signer{}}
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.mu.Lock()
		defer j.mu.Unlock()
		j.reads++
		st := jwkset.NewMemoryStorage()
		for kid, k := range j.keys {
			jwk, err := jwkset.NewJWKFromKey(k.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid}})
			if err != nil {
				t.Error(err)
				return
			}
			_ = st.KeyWrite(r.Context(), jwk)
		}
		raw, err := st.JSONPublic(r.Context())
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(raw)
	}))
	t.Cleanup(j.srv.Close)
	return j
}

func (j *jwks) set(keys map[string]crypto.Signer) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.keys = keys
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func edKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign makes a token with claims (iss, aud, exp filled in unless given).
func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	base := jwt.MapClaims{"iss": iss, "aud": aud, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	for k, v := range claims {
		if v == nil {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	tok := jwt.NewWithClaims(m, base)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newVerifier(t testing.TB, cfg identity.Config) *identity.Verifier {
	t.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer = iss
	}
	if cfg.Audience == "" {
		cfg.Audience = aud
	}
	v, err := identity.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifyAgainstJWKS(t *testing.T) {
	t.Parallel()
	j := newJWKS(t)
	rk, ek, dk := rsaKey(t), ecKey(t), edKey(t)
	j.set(map[string]crypto.Signer{"r1": rk, "e1": ek, "d1": dk})
	v := newVerifier(t, identity.Config{JWKSURL: j.srv.URL})
	pubDER, _ := x509.MarshalPKIXPublicKey(rk.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	tests := []struct {
		name    string
		token   string
		want    identity.Caller
		wantErr bool
	}{
		{"RS256", sign(t, jwt.SigningMethodRS256, rk, "r1", jwt.MapClaims{"sub": "alice"}), identity.Caller{PlayerID: "alice", Subject: "alice"}, false},
		{"ES256", sign(t, jwt.SigningMethodES256, ek, "e1", jwt.MapClaims{"sub": "bob"}), identity.Caller{PlayerID: "bob", Subject: "bob"}, false},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, dk, "d1", jwt.MapClaims{"sub": "carol"}), identity.Caller{PlayerID: "carol", Subject: "carol"}, false},
		{"server role", sign(t, jwt.SigningMethodEdDSA, dk, "d1", jwt.MapClaims{"sub": "backend-1", "scope": "read matchmaking:server"}), identity.Caller{Server: true, PlayerID: "backend-1", Subject: "backend-1"}, false},
		{"server credential that is no player id", sign(t, jwt.SigningMethodEdDSA, dk, "d1", jwt.MapClaims{"sub": "backend@clients", "scope": "matchmaking:server"}), identity.Caller{Server: true, Subject: "backend@clients"}, false},
		{"server scope as a prefix of another", sign(t, jwt.SigningMethodEdDSA, dk, "d1", jwt.MapClaims{"sub": "x@y", "scope": "matchmaking:server-ish"}), identity.Caller{}, true},
		{"aud list", sign(t, jwt.SigningMethodEdDSA, dk, "d1", jwt.MapClaims{"sub": "dave", "aud": []string{"other", aud}}), identity.Caller{PlayerID: "dave", Subject: "dave"}, false},
		{"within leeway", sign(t, jwt.SigningMethodEdDSA, dk, "d1", jwt.MapClaims{"sub": "eve", "exp": time.Now().Add(-10 * time.Second).Unix()}), identity.Caller{PlayerID: "eve", Subject: "eve"}, false},
		{"expired", sign(t, jwt.SigningMethodRS256, rk, "r1", jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Minute).Unix()}), identity.Caller{}, true},
		{"no exp", sign(t, jwt.SigningMethodRS256, rk, "r1", jwt.MapClaims{"sub": "alice", "exp": nil}), identity.Caller{}, true},
		{"not yet valid", sign(t, jwt.SigningMethodRS256, rk, "r1", jwt.MapClaims{"sub": "alice", "nbf": time.Now().Add(time.Hour).Unix()}), identity.Caller{}, true},
		{"wrong issuer", sign(t, jwt.SigningMethodRS256, rk, "r1", jwt.MapClaims{"sub": "alice", "iss": "https://evil.example.com/"}), identity.Caller{}, true},
		{"no issuer", sign(t, jwt.SigningMethodRS256, rk, "r1", jwt.MapClaims{"sub": "alice", "iss": nil}), identity.Caller{}, true},
		{"wrong audience", sign(t, jwt.SigningMethodRS256, rk, "r1", jwt.MapClaims{"sub": "alice", "aud": "another-game"}), identity.Caller{}, true},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "r1", jwt.MapClaims{"sub": "alice"}), identity.Caller{}, true},
		{"HS256 with the RSA public key as secret", sign(t, jwt.SigningMethodHS256, pubPEM, "r1", jwt.MapClaims{"sub": "alice"}), identity.Caller{}, true},
		{"HS256 with the DER public key as secret", sign(t, jwt.SigningMethodHS256, pubDER, "r1", jwt.MapClaims{"sub": "alice"}), identity.Caller{}, true},
		{"RS256 header on an EdDSA key", sign(t, jwt.SigningMethodRS256, rk, "d1", jwt.MapClaims{"sub": "alice"}), identity.Caller{}, true},
		{"unknown signer", sign(t, jwt.SigningMethodEdDSA, edKey(t), "d1", jwt.MapClaims{"sub": "alice"}), identity.Caller{}, true},
		{"player id with a wildcard", sign(t, jwt.SigningMethodEdDSA, dk, "d1", jwt.MapClaims{"sub": "a.*"}), identity.Caller{}, true},
		{"no player claim", sign(t, jwt.SigningMethodEdDSA, dk, "d1", jwt.MapClaims{}), identity.Caller{}, true},
		{"not a JWT", "abc.def.ghi", identity.Caller{}, true},
		{"empty", "", identity.Caller{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), tt.token)
			if tt.wantErr {
				if err == nil || !errors.Is(err, identity.ErrUnauthorized) {
					t.Fatalf("accepted: %+v, %v", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestKeyRotation: the issuer replaces its key; a token with the new kid
// makes the verifier read the JWKS again at once (rate-limited), and the
// old key, no longer served, is refused.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	j := newJWKS(t)
	old, cur := edKey(t), rsaKey(t)
	j.set(map[string]crypto.Signer{"k-old": old})
	v := newVerifier(t, identity.Config{JWKSURL: j.srv.URL, UnknownKIDEvery: time.Millisecond, Refresh: time.Hour})
	oldTok := sign(t, jwt.SigningMethodEdDSA, old, "k-old", jwt.MapClaims{"sub": "alice"})
	if _, err := v.Verify(t.Context(), oldTok); err != nil {
		t.Fatalf("before the rotation: %v", err)
	}
	j.set(map[string]crypto.Signer{"k-new": cur})
	newTok := sign(t, jwt.SigningMethodRS256, cur, "k-new", jwt.MapClaims{"sub": "alice"})
	if c, err := v.Verify(t.Context(), newTok); err != nil || c.PlayerID != "alice" {
		t.Fatalf("new kid after the rotation: %+v %v", c, err)
	}
	time.Sleep(5 * time.Millisecond) // let the unknown-kid limiter refill
	if _, err := v.Verify(t.Context(), oldTok); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("old kid, no longer served, still accepted: %v", err)
	}
}

// TestUnknownKIDRefreshIsRateLimited: tokens with made-up kids cannot make
// the verifier hammer the issuer.
func TestUnknownKIDRefreshIsRateLimited(t *testing.T) {
	t.Parallel()
	j := newJWKS(t)
	j.set(map[string]crypto.Signer{"k1": edKey(t)})
	v := newVerifier(t, identity.Config{JWKSURL: j.srv.URL, UnknownKIDEvery: time.Hour, Refresh: time.Hour})
	stranger := edKey(t)
	for i := range 50 {
		tok := sign(t, jwt.SigningMethodEdDSA, stranger, "made-up-"+string(rune('a'+i%26)), jwt.MapClaims{"sub": "x"})
		if _, err := v.Verify(t.Context(), tok); err == nil {
			t.Fatal("accepted a token with an unknown kid")
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.reads > 2 { // the first read, and one refresh
		t.Fatalf("%d JWKS reads for 50 unknown kids", j.reads)
	}
}

func TestStaticKeysAndMinter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "signer.pem")
	if err := identity.WritePrivateKey(keyFile); err != nil {
		t.Fatal(err)
	}
	m, err := identity.NewMinterFile(keyFile, iss, aud)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := identity.PublicKeyPEM(m.Public().Key)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(dir, "signer.pub.pem")
	if err := os.WriteFile(pubFile, pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, identity.Config{KeyFiles: []string{pubFile}, PlayerClaim: "pid"})
	tok, err := m.Sign(jwt.MapClaims{"sub": "account-9", "pid": "p9"})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := v.Verify(t.Context(), tok); err != nil || c.PlayerID != "p9" {
		t.Fatalf("player from the configured claim: %+v %v", c, err)
	}
	// An identity provider's key handed over as a PEM file keeps its own
	// kid in tokens (or none); either verifies.
	_, signer, _ := ed25519.GenerateKey(rand.Reader)
	idpPEM, _ := identity.PublicKeyPEM(signer.Public())
	idpFile := filepath.Join(dir, "idp.pem")
	if err := os.WriteFile(idpFile, idpPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	v2 := newVerifier(t, identity.Config{KeyFiles: []string{pubFile, idpFile}})
	for _, kid := range []string{"idp-key-7", ""} {
		if c, err := v2.Verify(t.Context(), sign(t, jwt.SigningMethodEdDSA, signer, kid, jwt.MapClaims{"sub": "zed"})); err != nil || c.PlayerID != "zed" {
			t.Fatalf("static key, kid %q: %+v %v", kid, c, err)
		}
	}
	if _, err := v2.Verify(t.Context(), sign(t, jwt.SigningMethodEdDSA, edKey(t), "idp-key-7", jwt.MapClaims{"sub": "zed"})); err == nil {
		t.Fatal("a key in no file verified")
	}
	srvTok, _ := m.Server("backend", "")
	if c, err := v.Verify(t.Context(), srvTok); err != nil || !c.Server || c.PlayerID != "" || c.Key() != "server:backend" {
		t.Fatalf("server token: %+v %v", c, err)
	}
	// A private key file is no verifier's key.
	if _, err := identity.New(t.Context(), identity.Config{Issuer: iss, Audience: aud, KeyFiles: []string{keyFile}}); !errors.Is(err, identity.ErrBadKey) {
		t.Fatalf("private key as a public key: %v", err)
	}
	if _, err := identity.New(t.Context(), identity.Config{}); !errors.Is(err, identity.ErrConfig) {
		t.Fatalf("empty config: %v", err)
	}
}

func TestDevIssuer(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "identity", "dev.pem")
	d, err := identity.NewDevIssuer(path, identity.DevIssuerName, identity.DevAudience)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	again, err := identity.NewDevIssuer(path, identity.DevIssuerName, identity.DevAudience)
	if err != nil || again.Public().ID != d.Public().ID {
		t.Fatalf("the key is not kept between runs: %v", err)
	}
	v := newVerifier(t, identity.Config{Issuer: identity.DevIssuerName, Audience: identity.DevAudience, Keys: []identity.StaticKey{d.Public()}})
	call := func(remote, body string) (int, identity.DevToken) {
		r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "http://localhost:3000/dev/token", strings.NewReader(body))
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		d.ServeHTTP(w, r)
		var out identity.DevToken
		_ = json.NewDecoder(w.Body).Decode(&out)
		return w.Code, out
	}
	code, tok := call("127.0.0.1:5555", `{"player_id":"alice"}`)
	if c, err := v.Verify(t.Context(), tok.Token); code != 200 || err != nil || c.PlayerID != "alice" || tok.PlayerID != "alice" {
		t.Fatalf("dev token: %d %+v %v", code, c, err)
	}
	if code, tok := call("[::1]:5555", ""); code != 200 || !strings.HasPrefix(tok.PlayerID, "dev-") {
		t.Fatalf("random player: %d %+v", code, tok)
	}
	// A game backend's token, to queue a party with under make run.
	code, tok = call("127.0.0.1:5555", `{"server":true}`)
	if c, err := v.Verify(t.Context(), tok.Token); code != 200 || err != nil || !c.Server || tok.PlayerID != "" {
		t.Fatalf("dev server token: %d %+v %v", code, c, err)
	}
	if code, _ := call("10.1.2.3:5555", `{"server":true}`); code != http.StatusForbidden {
		t.Fatalf("a server token for another machine: %d", code)
	}
	if code, _ := call("10.1.2.3:5555", ""); code != http.StatusForbidden {
		t.Fatalf("from another machine: %d", code)
	}
	if code, _ := call("127.0.0.1:5555", `{"player_id":"a.>"}`); code != http.StatusBadRequest {
		t.Fatalf("bad player id: %d", code)
	}
	// A page of another site whose name it made resolve to 127.0.0.1 (DNS
	// rebinding) reaches the issuer from a loopback peer, under its own
	// name; so does a proxy on this machine forwarding others.
	for name, hdr := range map[string]map[string]string{
		"a rebound name":        {"Host": "evil.example:3000"},
		"another site's page":   {"Host": "localhost:3000", "Origin": "http://evil.example:3000"},
		"a forwarded request":   {"Host": "localhost:3000", "X-Forwarded-For": "203.0.113.9"},
		"a page of no http url": {"Host": "localhost:3000", "Origin": "null"},
	} {
		r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/dev/token", strings.NewReader(`{"server":true}`))
		r.RemoteAddr = "127.0.0.1:5555"
		for k, v := range hdr {
			if k == "Host" {
				r.Host = v
			} else {
				r.Header.Set(k, v)
			}
		}
		w := httptest.NewRecorder()
		d.ServeHTTP(w, r)
		if w.Code != http.StatusForbidden {
			t.Errorf("%s: %d", name, w.Code)
		}
	}
	for _, host := range []string{"localhost:3000", "127.0.0.1:3000", "[::1]:3000", "LOCALHOST"} {
		r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/dev/token", nil)
		r.RemoteAddr, r.Host = "127.0.0.1:5555", host
		r.Header.Set("Origin", "http://"+host)
		w := httptest.NewRecorder()
		d.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Errorf("the page of %s: %d", host, w.Code)
		}
	}
	for addr, ok := range map[string]bool{"127.0.0.1:3000": true, "localhost:3000": true, "[::1]:3000": true, ":3000": false, "0.0.0.0:3000": false, "10.0.0.1:3000": false} {
		if err := identity.CheckLoopbackListen(addr); (err == nil) != ok {
			t.Errorf("CheckLoopbackListen(%q) = %v", addr, err)
		}
	}
}

func TestFromRequest(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ hdr, url, want string }{
		{"Bearer abc", "/", "abc"},
		{"bearer abc", "/?access_token=zzz", "abc"},
		{"Basic abc", "/?access_token=zzz", ""},
		{"", "/?access_token=zzz", "zzz"},
		{"", "/", ""},
	} {
		r := httptest.NewRequest(http.MethodGet, tt.url, nil)
		if tt.hdr != "" {
			r.Header.Set("Authorization", tt.hdr)
		}
		if got := identity.FromRequest(r); got != tt.want {
			t.Errorf("%q %q: %q, want %q", tt.hdr, tt.url, got, tt.want)
		}
	}
}

// BenchmarkVerify is the cost of checking one token again and again:
// "full" checks it in full each time (the cache off), "cached" takes it
// from the cache after the first (go test -run '^$' -bench Verify
// ./identity).
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []struct {
		name string
		m    jwt.SigningMethod
		key  crypto.Signer
	}{
		{"EdDSA", jwt.SigningMethodEdDSA, edKey(b)},
		{"RS256", jwt.SigningMethodRS256, rsaKey(b)},
		{"ES256", jwt.SigningMethodES256, ecKey(b)},
	} {
		for _, cache := range []struct {
			name string
			size int
		}{{"full", -1}, {"cached", 0}} {
			b.Run(alg.name+"/"+cache.name, func(b *testing.B) {
				id, _ := identity.KeyID(alg.key.Public())
				v, err := identity.New(context.Background(), identity.Config{Issuer: iss, Audience: aud, TokenCacheSize: cache.size, Keys: []identity.StaticKey{{ID: id, Key: alg.key.Public()}}})
				if err != nil {
					b.Fatal(err)
				}
				tok := sign(b, alg.m, alg.key, id, jwt.MapClaims{"sub": "alice"})
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Verify(context.Background(), tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestTicketClaim: with a ticket claim configured, a player token carries
// its player's skill and attributes, and one without it, or with anything
// else in it, is refused; a server token needs none.
func TestTicketClaim(t *testing.T) {
	t.Parallel()
	key := edKey(t)
	v := newVerifier(t, identity.Config{Keys: []identity.StaticKey{{ID: "k", Key: key.Public()}}, TicketClaim: "qm"})
	tok := func(claims jwt.MapClaims) string { return sign(t, jwt.SigningMethodEdDSA, key, "k", claims) }
	c, err := v.Verify(t.Context(), tok(jwt.MapClaims{"sub": "ann", "qm": map[string]any{"skill": 1850, "attributes": map[string]any{"strings": map[string]any{"platform": "pc"}}}}))
	if err != nil || c.Ticket == nil || *c.Ticket.Skill != 1850 || c.Ticket.Attributes.Strings["platform"] != "pc" {
		t.Fatalf("a player token with its ticket claim: %+v %v", c, err)
	}
	for name, claim := range map[string]any{
		"no claim":      nil,
		"no skill":      map[string]any{"attributes": map[string]any{"tags": []string{"x"}}},
		"unknown field": map[string]any{"skill": 1, "rank": "gold"},
		"not an object": "1850",
		"bad attribute": map[string]any{"skill": 1, "attributes": map[string]any{"numbers": map[string]any{"level": nil}}},
	} {
		claims := jwt.MapClaims{"sub": "ann"}
		if claim != nil {
			claims["qm"] = claim
		}
		if _, err := v.Verify(t.Context(), tok(claims)); !errors.Is(err, identity.ErrInvalidToken) {
			t.Errorf("%s: %v, want an invalid token", name, err)
		}
	}
	if c, err := v.Verify(t.Context(), tok(jwt.MapClaims{"sub": "backend", "scope": identity.DefaultServerScope})); err != nil || !c.Server || c.Ticket != nil {
		t.Fatalf("a server token: %+v %v", c, err)
	}
	// Without the setting, a claim of that name is no one's business.
	plain := newVerifier(t, identity.Config{Keys: []identity.StaticKey{{ID: "k", Key: key.Public()}}})
	if c, err := plain.Verify(t.Context(), tok(jwt.MapClaims{"sub": "ann", "qm": "anything"})); err != nil || c.Ticket != nil {
		t.Fatalf("no ticket claim configured: %+v %v", c, err)
	}
}
