package identity

import (
	"crypto/ed25519"

	"github.com/golang-jwt/jwt/v5"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// EdDSA tokens are checked with curve25519-voi instead of crypto/ed25519:
// 35 µs a signature against 60 µs here (BenchmarkVerifyEdDSA), and a
// frontend checks one for every ticket created by a player it has not
// seen (its cache holds the rest). Past capacity those checks were the
// largest line of the frontend's profile, 18% of its CPU (BENCHMARKS,
// thirty-second round). voiStdLib keeps crypto/ed25519's rules exactly
// (cofactorless, a canonical S, small-order and non-canonical keys as
// the standard library takes them): a token one accepts, the other does
// (TestEdDSAAgreesWithTheStandardLibrary). Signing is unchanged.
//
// The method replaces golang-jwt's "EdDSA" in its registry, which is
// process-wide: every parser in a process that imports this package
// checks EdDSA with it.
func init() {
	jwt.RegisterSigningMethod(jwt.SigningMethodEdDSA.Alg(), func() jwt.SigningMethod { return eddsa{jwt.SigningMethodEdDSA} })
}

var voiStdLib = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// eddsa is golang-jwt's Ed25519 method with its Verify done by voi.
type eddsa struct{ *jwt.SigningMethodEd25519 }

// Verify is jwt.SigningMethodEd25519's, with its errors.
func (m eddsa) Verify(signingString string, sig []byte, key any) error {
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return jwt.ErrInvalidKeyType
	}
	if len(pub) != ed25519.PublicKeySize { // voi panics on it
		return jwt.ErrInvalidKey
	}
	if !voi.VerifyWithOptions(voi.PublicKey(pub), []byte(signingString), sig, voiStdLib) {
		return jwt.ErrEd25519Verification
	}
	return nil
}
