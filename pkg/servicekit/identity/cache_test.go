package identity_test

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
)

// counted is a verifier on one static Ed25519 key that counts its checks
// in full, with a clock the test moves.
type counted struct {
	v      *identity.Verifier
	key    crypto.Signer
	kid    string
	checks atomic.Int64
	clock  atomic.Int64 // Unix nanoseconds
}

func newCounted(t *testing.T, cfg identity.Config) *counted {
	t.Helper()
	c := &counted{key: edKey(t)}
	c.kid, _ = identity.KeyID(c.key.Public())
	cfg.Keys = []identity.StaticKey{{ID: c.kid, Key: c.key.Public()}}
	c.v = newVerifier(t, cfg)
	c.clock.Store(time.Now().UnixNano())
	identity.SetClock(c.v, func() time.Time { return time.Unix(0, c.clock.Load()) })
	identity.OnVerify(c.v, func() { c.checks.Add(1) })
	return c
}

func (c *counted) token(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	return sign(t, jwt.SigningMethodEdDSA, c.key, c.kid, claims)
}

func (c *counted) advance(d time.Duration) { c.clock.Add(int64(d)) }

// expect verifies tok and checks the outcome and whether it was checked
// in full.
func (c *counted) expect(t *testing.T, tok string, ok, full bool) identity.Caller {
	t.Helper()
	before := c.checks.Load()
	got, err := c.v.Verify(t.Context(), tok)
	if ok && err != nil {
		t.Fatalf("refused: %v", err)
	}
	if !ok && !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("accepted: %+v, %v", got, err)
	}
	if checked := c.checks.Load() > before; checked != full {
		t.Fatalf("checked in full: %v, want %v", checked, full)
	}
	return got
}

func TestCacheHitSkipsTheSignatureCheck(t *testing.T) {
	t.Parallel()
	c := newCounted(t, identity.Config{})
	tok := c.token(t, jwt.MapClaims{"sub": "alice"})
	first := c.expect(t, tok, true, true)
	again := c.expect(t, tok, true, false)
	if first != again || again.PlayerID != "alice" {
		t.Fatalf("from the cache %+v, checked %+v", again, first)
	}
	srv := c.token(t, jwt.MapClaims{"sub": "backend", "scope": identity.DefaultServerScope})
	c.expect(t, srv, true, true)
	if got := c.expect(t, srv, true, false); !got.Server || got.Subject != "backend" {
		t.Fatalf("server token from the cache: %+v", got)
	}
}

// TestCacheKeysTheWholeToken: a token differing from a cached one in one
// byte anywhere, or sharing its signature or kid, is checked in full.
func TestCacheKeysTheWholeToken(t *testing.T) {
	t.Parallel()
	c := newCounted(t, identity.Config{})
	tok := c.token(t, jwt.MapClaims{"sub": "alice"})
	c.expect(t, tok, true, true)
	c.expect(t, tok, true, false)
	dot1, dot2 := strings.Index(tok, "."), strings.LastIndex(tok, ".")
	// Not the signature's last character: its low bits are padding.
	for _, i := range []int{0, dot1 / 2, dot1 + 1, (dot1 + dot2) / 2, dot2 - 1, dot2 + 1, (dot2 + len(tok)) / 2} {
		b := []byte(tok)
		b[i] = map[bool]byte{true: 'A', false: 'B'}[b[i] != 'A']
		t.Run(fmt.Sprintf("byte %d", i), func(t *testing.T) { c.expect(t, string(b), false, true) })
	}
	// Another token's claims under this token's header and signature.
	other := c.token(t, jwt.MapClaims{"sub": "mallory"})
	o1, o2 := strings.Index(other, "."), strings.LastIndex(other, ".")
	c.expect(t, tok[:dot1]+other[o1:o2]+tok[dot2:], false, true)
	c.expect(t, other, true, true) // the same kid, another token
	c.expect(t, tok+" ", false, true)
	c.expect(t, tok[:len(tok)-1], false, true)
}

func TestCacheJudgesTimeOnEveryUse(t *testing.T) {
	t.Parallel()
	c := newCounted(t, identity.Config{Leeway: -1, TokenCacheMaxAge: 10 * time.Minute})
	now := time.Unix(0, c.clock.Load())
	tok := c.token(t, jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix()})
	c.expect(t, tok, true, true)
	c.advance(59 * time.Minute)
	c.expect(t, tok, true, true) // past the max age: checked again
	c.expect(t, tok, true, false)
	c.advance(2 * time.Minute)
	c.expect(t, tok, false, true) // past exp
	c.expect(t, tok, false, true) // and never remembered as valid

	// A clock stepped back before nbf refuses a cached token.
	nbf := c.token(t, jwt.MapClaims{"sub": "bob", "nbf": now.Add(50 * time.Minute).Unix(), "iat": nil, "exp": now.Add(3 * time.Hour).Unix()})
	c.expect(t, nbf, true, true)
	c.expect(t, nbf, true, false)
	c.advance(-20 * time.Minute)
	c.expect(t, nbf, false, true)
}

// TestCacheForgetsRemovedKeys: once the JWKS no longer serves a key, the
// tokens it signed are refused even though they were cached.
func TestCacheForgetsRemovedKeys(t *testing.T) {
	t.Parallel()
	j := newJWKS(t)
	old, cur := edKey(t), edKey(t)
	j.set(map[string]crypto.Signer{"k-old": old})
	v := newVerifier(t, identity.Config{JWKSURL: j.srv.URL, UnknownKIDEvery: time.Millisecond, Refresh: time.Hour})
	var checks atomic.Int64
	identity.OnVerify(v, func() { checks.Add(1) })
	oldTok := sign(t, jwt.SigningMethodEdDSA, old, "k-old", jwt.MapClaims{"sub": "alice"})
	for range 2 {
		if _, err := v.Verify(t.Context(), oldTok); err != nil {
			t.Fatal(err)
		}
	}
	if n := checks.Load(); n != 1 {
		t.Fatalf("%d checks in full of one token, want 1", n)
	}
	j.set(map[string]crypto.Signer{"k-new": cur})
	// A token naming the new kid makes the verifier read the JWKS.
	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodEdDSA, cur, "k-new", jwt.MapClaims{"sub": "bob"})); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // let the unknown-kid limiter refill
	if _, err := v.Verify(t.Context(), oldTok); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("a cached token of a removed key accepted: %v", err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	c := newCounted(t, identity.Config{TokenCacheSize: 50})
	var last string
	for i := range 400 {
		last = c.token(t, jwt.MapClaims{"sub": "alice", "jti": i})
		c.expect(t, last, true, true)
		if n := identity.CacheLen(c.v); n > 50 {
			t.Fatalf("%d entries after %d tokens, bound 50", n, i+1)
		}
	}
	if n := identity.CacheLen(c.v); n < 40 {
		t.Fatalf("only %d entries held of 50", n)
	}
	c.expect(t, last, true, false)

	off := newCounted(t, identity.Config{TokenCacheSize: -1})
	tok := off.token(t, jwt.MapClaims{"sub": "alice"})
	off.expect(t, tok, true, true)
	off.expect(t, tok, true, true)
	if n := identity.CacheLen(off.v); n != 0 {
		t.Fatalf("cache off holds %d", n)
	}
}

func TestCacheNeverRemembersFailures(t *testing.T) {
	t.Parallel()
	c := newCounted(t, identity.Config{})
	for _, tok := range []string{
		c.token(t, jwt.MapClaims{}), // no player claim
		c.token(t, jwt.MapClaims{"sub": "alice", "aud": "another-game"}),
		sign(t, jwt.SigningMethodEdDSA, edKey(t), c.kid, jwt.MapClaims{"sub": "alice"}),
	} {
		c.expect(t, tok, false, true)
		c.expect(t, tok, false, true)
	}
}

// TestCacheConcurrentUse: many goroutines verifying overlapping tokens
// through a cache too small for them each get their own token's caller
// (run with -race).
func TestCacheConcurrentUse(t *testing.T) {
	t.Parallel()
	c := newCounted(t, identity.Config{TokenCacheSize: 8})
	toks := make([]string, 24)
	for i := range toks {
		toks[i] = c.token(t, jwt.MapClaims{"sub": fmt.Sprintf("p%d", i)})
	}
	bad := c.token(t, jwt.MapClaims{"sub": "a.*"})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (g*7 + i) % len(toks)
				got, err := c.v.Verify(t.Context(), toks[k])
				if err != nil || got.PlayerID != fmt.Sprintf("p%d", k) {
					t.Errorf("token %d: %+v %v", k, got, err)
					return
				}
				if _, err := c.v.Verify(t.Context(), bad); err == nil {
					t.Error("accepted a bad token")
					return
				}
			}
		})
	}
	wg.Wait()
	if n := identity.CacheLen(c.v); n > 8 {
		t.Fatalf("%d entries, bound 8", n)
	}
}

// BenchmarkVerifyNewTokens is the cost of a token seen for the first
// time: every iteration verifies one of more distinct tokens than the
// verifier remembers, so each is checked in full (the miss path).
func BenchmarkVerifyNewTokens(b *testing.B) {
	key := edKey(b)
	id, _ := identity.KeyID(key.Public())
	v, err := identity.New(context.Background(), identity.Config{Issuer: iss, Audience: aud, Keys: []identity.StaticKey{{ID: id, Key: key.Public()}}})
	if err != nil {
		b.Fatal(err)
	}
	toks := make([]string, 40_000) // more than the default cache holds
	for i := range toks {
		toks[i] = sign(b, jwt.SigningMethodEdDSA, key, id, jwt.MapClaims{"sub": "alice", "jti": i})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := v.Verify(context.Background(), toks[i%len(toks)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkVerifyCachedParallel is the cache's hit path from many
// goroutines at once, each over the same 1,024 tokens: what its locks
// cost when the frontend's handlers share it.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	key := edKey(b)
	id, _ := identity.KeyID(key.Public())
	v, err := identity.New(context.Background(), identity.Config{Issuer: iss, Audience: aud, Keys: []identity.StaticKey{{ID: id, Key: key.Public()}}})
	if err != nil {
		b.Fatal(err)
	}
	toks := make([]string, 1024)
	for i := range toks {
		toks[i] = sign(b, jwt.SigningMethodEdDSA, key, id, jwt.MapClaims{"sub": "alice", "jti": i})
		if _, err := v.Verify(context.Background(), toks[i]); err != nil {
			b.Fatal(err)
		}
	}
	var seed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(97))
		for pb.Next() {
			if _, err := v.Verify(context.Background(), toks[i%len(toks)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
