package identity_test

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	_ "github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity" // registers its EdDSA
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
	if _, std := method.(*jwt.SigningMethodEd25519); std {
		t.Fatal("EdDSA is golang-jwt's own method: this package registered none")
	}
	check := func(name string, pub ed25519.PublicKey, msg, sig []byte) {
		t.Helper()
		want := ed25519.Verify(pub, msg, sig)
		err := method.Verify(string(msg), sig, pub)
		if got := err == nil; got != want {
			t.Fatalf("%s: accepted %v (%v), crypto/ed25519 %v", name, got, err, want)
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
		msg, _ := hex.DecodeString(c.Message)
		pub, _ := hex.DecodeString(c.PubKey)
		sig, _ := hex.DecodeString(c.Signature)
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
		check("another message", pub, append(slices.Clone(msg), 0), sig)
		other, _, _ := ed25519.GenerateKey(nil)
		check("another key", other, msg, sig)
		// S + L, little-endian, where it still fits 32 bytes (S < 2^256 - L).
		be := slices.Clone(sig[32:])
		slices.Reverse(be)
		s := new(big.Int).SetBytes(be)
		s.Add(s, order)
		le := s.FillBytes(make([]byte, 33))
		slices.Reverse(le)
		if le[32] == 0 {
			check("S + L", pub, msg, append(slices.Clone(sig[:32]), le[:32]...))
		}
	}
	if accepted != 500 {
		t.Fatalf("crypto/ed25519 accepted %d of 500 valid signatures", accepted)
	}
	// The key checks golang-jwt's method makes, with its errors.
	if err := method.Verify("x", make([]byte, 64), []byte("not a key")); err != jwt.ErrInvalidKeyType {
		t.Fatalf("a key of another type: %v", err)
	}
	if err := method.Verify("x", make([]byte, 64), ed25519.PublicKey(make([]byte, 31))); err != jwt.ErrInvalidKey {
		t.Fatalf("a key 31 bytes long: %v", err)
	}
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
