package jointoken

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// A token's signature is crypto/ed25519's, byte for byte, though another
// library makes it (Sign): random keys, grants and seats. Ed25519 signing
// is deterministic, so any other signature would be a fault of that
// library, and a game server (crypto/ed25519's Verify) would refuse it.
func TestSignaturesAreTheStandardLibrarys(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 300 {
		seed := make([]byte, ed25519.SeedSize)
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		key := ed25519.NewKeyFromSeed(seed)
		s, err := NewSigner(key)
		if err != nil {
			t.Fatal(err)
		}
		g := Grant{MatchID: fmt.Sprintf("m%x", rng.Uint64()), PlayerID: fmt.Sprintf("p%d", i), Expires: now.Add(time.Duration(rng.IntN(600)) * time.Second)}
		if i%2 == 1 {
			g.Seat = Seat{Team: 1, Teams: 2, TeamSize: 1 + rng.IntN(4), AcceptsBackfill: i%3 == 0}
		}
		tok, err := s.Sign(g)
		if err != nil {
			t.Fatal(err)
		}
		cut := strings.LastIndexByte(tok, '.')
		want := enc.EncodeToString(ed25519.Sign(key, []byte(tok[:cut])))
		if tok[cut+1:] != want {
			t.Fatalf("grant %+v: signature %s, crypto/ed25519's %s", g, tok[cut+1:], want)
		}
		if _, err := NewKeys(key.Public().(ed25519.PublicKey)).Verify(tok, now); err != nil {
			t.Fatalf("grant %+v: %v", g, err)
		}
	}
}
