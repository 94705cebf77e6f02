package identity_test

import (
	"crypto"
	"crypto/ed25519"
	crand "crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
)

// speccheck are the twelve edge cases of "Taming the many EdDSAs"
// (Chalkias, Garillot, Nikolaenko): small-order and non-canonical keys
// and R, S past the group order, cofactored against cofactorless checks.
// testdata/speccheck_cases.json is github.com/novifinancial/ed25519-speccheck's
// scripts/cases.json (Apache-2.0), as curve25519-voi's tests take it.
type speccheck struct {
	Message   string `json:"message"`
	PubKey    string `json:"pub_key"`
	Signature string `json:"signature"`
}

// order is the order L of Ed25519's group: S + L is a second encoding of
// a signature's S, which crypto/ed25519 refuses (malleability).
var order, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// The EdDSA method this package registers (curve25519-voi) accepts
// exactly the tokens crypto/ed25519 accepts: the twelve speccheck cases,
// and random keys and messages with their signatures, the signatures
// with a byte changed, with S + L, cut short, and under the wrong key.
// A method that differed would accept a token golang-jwt's own refuses,
// or refuse one every other verifier accepts.
func TestEdDSAAgreesWithTheStandardLibrary(t *testing.T) {
	method := jwt.GetSigningMethod("EdDSA")
	if _, ours := method.(identity.EdDSA); !ours {
		t.Fatalf("EdDSA is checked by %T, not this package's method", method)
	}
	check := func(name string, pub ed25519.PublicKey, msg, sig []byte) {
		t.Helper()
		if err := agree(method, pub, msg, sig); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	raw, err := os.ReadFile("testdata/speccheck_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []speccheck
	if err := json.Unmarshal(raw, &cases); err != nil || len(cases) != 12 {
		t.Fatalf("%d cases: %v", len(cases), err)
	}
	for i, c := range cases {
		msg, err1 := hex.DecodeString(c.Message)
		pub, err2 := hex.DecodeString(c.PubKey)
		sig, err3 := hex.DecodeString(c.Signature)
		if err := errors.Join(err1, err2, err3); err != nil || len(pub) != ed25519.PublicKeySize {
			t.Fatalf("speccheck case %d: %d-byte key, %v", i, len(pub), err)
		}
		check(fmt.Sprint("speccheck case ", i), pub, msg, sig)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	accepted := 0
	for i := range 500 {
		_, priv, _ := ed25519.GenerateKey(nil)
		pub := priv.Public().(ed25519.PublicKey)
		msg := make([]byte, 1+rng.IntN(300))
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		sig := ed25519.Sign(priv, msg)
		if ed25519.Verify(pub, msg, sig) {
			accepted++
		}
		check("valid", pub, msg, sig)
		flipped := slices.Clone(sig)
		flipped[rng.IntN(len(sig))] ^= byte(1 + rng.IntN(255))
		check("a byte changed", pub, msg, flipped)
		check("cut short", pub, msg, sig[:len(sig)-1-i%8])
		check("one byte too long", pub, msg, append(slices.Clone(sig), 0))
		check("no signature", pub, msg, nil)
		check("another message", pub, append(slices.Clone(msg), 0), sig)
		other, _, _ := ed25519.GenerateKey(nil)
		check("another key", other, msg, sig)
		// S + L, little-endian: S < L, so S + L < 2^254 fits its 32 bytes.
		be := slices.Clone(sig[32:])
		slices.Reverse(be)
		s := new(big.Int).SetBytes(be)
		le := s.Add(s, order).FillBytes(make([]byte, 32))
		slices.Reverse(le)
		check("S + L", pub, msg, append(slices.Clone(sig[:32]), le...))
	}
	if accepted != 500 {
		t.Fatalf("crypto/ed25519 accepted %d of 500 valid signatures", accepted)
	}
	// The key checks golang-jwt's method makes, with its errors.
	pub, priv, _ := ed25519.GenerateKey(nil)
	rsaKey, err := rsa.GenerateKey(crand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sig := ed25519.Sign(priv, []byte("x"))
	for _, tc := range []struct {
		name string
		key  any
		want error
	}{
		{"a key of another type", []byte(pub), jwt.ErrInvalidKeyType},
		{"a pointer to the key", &pub, jwt.ErrInvalidKeyType},
		{"an RSA key", &rsaKey.PublicKey, jwt.ErrInvalidKeyType},
		{"a key 31 bytes long", pub[:31], jwt.ErrInvalidKey},
		{"no key", ed25519.PublicKey(nil), jwt.ErrInvalidKey},
	} {
		stock := jwt.SigningMethodEdDSA.Verify("x", sig, tc.key)
		if err := method.Verify("x", sig, tc.key); !errors.Is(err, tc.want) || !errors.Is(stock, tc.want) {
			t.Fatalf("%s: %v (golang-jwt's: %v), want %v", tc.name, err, stock, tc.want)
		}
	}
}

// This package's method signs as golang-jwt's does, byte for byte:
// random keys and messages, a key whose public half is not its seed's,
// and a crypto.Signer that is no ed25519.PrivateKey.
func TestEdDSASignsAsTheStandardLibrary(t *testing.T) {
	method := jwt.GetSigningMethod("EdDSA")
	rng := rand.New(rand.NewPCG(5, 6))
	_, other, _ := ed25519.GenerateKey(nil)
	for i := range 200 {
		_, priv, _ := ed25519.GenerateKey(nil)
		msg := make([]byte, rng.IntN(300))
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		keys := []any{priv, signerOnly{priv}}
		if i == 0 {
			keys = append(keys, ed25519.PrivateKey(append(slices.Clone(priv[:32]), other[32:]...)))
		}
		for _, key := range keys {
			got, err := method.Sign(string(msg), key)
			want, stockErr := jwt.SigningMethodEdDSA.Sign(string(msg), key)
			if err != nil || stockErr != nil || string(got) != string(want) {
				t.Fatalf("%T: %x (%v), golang-jwt's %x (%v)", key, got, err, want, stockErr)
			}
		}
	}
	// golang-jwt's refuses what is no crypto.Signer; it panics on a key
	// of the wrong length, which this one refuses.
	if _, err := method.Sign("x", "not a key"); !errors.Is(err, jwt.ErrInvalidKeyType) {
		t.Fatalf("not a key: %v", err)
	}
	if _, err := method.Sign("x", other[:63]); !errors.Is(err, jwt.ErrInvalidKey) {
		t.Fatalf("a key 63 bytes long: %v", err)
	}
}

// signerOnly is an Ed25519 key behind crypto.Signer alone, as an HSM's.
type signerOnly struct{ ed25519.PrivateKey }

func (s signerOnly) Public() crypto.PublicKey { return s.PrivateKey.Public() }

func (s signerOnly) Sign(r io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.PrivateKey.Sign(r, msg, opts)
}

// agree checks a signature with method and with crypto/ed25519, and says
// how they differ (nil: they do not).
func agree(method jwt.SigningMethod, pub ed25519.PublicKey, msg, sig []byte) error {
	want := ed25519.Verify(pub, msg, sig)
	err := method.Verify(string(msg), sig, pub)
	if got := err == nil; got != want || err != nil && !errors.Is(err, jwt.ErrEd25519Verification) {
		return fmt.Errorf("accepted %v (%v), crypto/ed25519 %v", got, err, want)
	}
	return nil
}

// FuzzEdDSAAgreesWithTheStandardLibrary: whatever key, message and
// signature a token brings, this package's method and crypto/ed25519
// agree. The seeds are a valid signature, which the fuzzer alters.
func FuzzEdDSAAgreesWithTheStandardLibrary(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := []byte("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJwMSJ9")
	f.Add([]byte(pub), msg, ed25519.Sign(priv, msg))
	f.Add([]byte(pub), msg, make([]byte, 64))
	method := jwt.GetSigningMethod("EdDSA")
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if len(pub) != ed25519.PublicKeySize {
			return // crypto/ed25519 panics; both methods refuse it (above)
		}
		if err := agree(method, pub, msg, sig); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkVerifyEdDSA is the signature check of a new player's token,
// crypto/ed25519's against the method this package registers.
func BenchmarkVerifyEdDSA(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := []byte("eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJwbGF5ZXItMTIzNDU2NyIsImF1ZCI6InF1aWNrbWF0Y2giLCJleHAiOjE4OTM0NTYwMDB9")
	sig := ed25519.Sign(priv, msg)
	b.Run("crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("refused")
			}
		}
	})
	method := jwt.GetSigningMethod("EdDSA")
	b.Run("registered", func(b *testing.B) {
		for b.Loop() {
			if err := method.Verify(string(msg), sig, pub); err != nil {
				b.Fatal(err)
			}
		}
	})
}
