package identity

import (
	"crypto/ed25519"

	"github.com/golang-jwt/jwt/v5"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// EdDSA tokens are checked with curve25519-voi instead of crypto/ed25519:
// 37 µs a signature against 60 µs here (BenchmarkVerifyEdDSA), and a
// frontend checks one for every ticket created by a player it has not
// seen (its cache holds the rest). Past capacity those checks were the
// largest line of the frontend's profile, 18% of its CPU (BENCHMARKS,
// thirty-second round). stdLibRules keeps crypto/ed25519's rules
// exactly: a token one accepts, the other does
// (TestEdDSAAgreesWithTheStandardLibrary, FuzzEdDSAAgreesWithTheStandardLibrary).
// Tokens are signed with it too (Minter): 16 µs against 30, and the
// load tool signs one per player before its run starts.
//
// The method replaces golang-jwt's "EdDSA" in its registry, which is
// process-wide: every parser in a process that imports this package
// checks EdDSA with it. This package imports golang-jwt, whose own
// registration runs first, and parsers look the method up per token.
func init() {
	jwt.RegisterSigningMethod(edDSA.Alg(), func() jwt.SigningMethod { return edDSA })
}

// edDSA is the method registered, and the Minter's.
var edDSA = eddsa{jwt.SigningMethodEdDSA}

// stdLibRules are crypto/ed25519's rules, spelled out here rather than
// taken from voi's mutable VerifyOptionsStdLib: a cofactorless check, S
// and R canonical, and public keys of small order or in a non-canonical
// encoding accepted, as the standard library accepts them.
var stdLibRules = &voi.Options{Verify: &voi.VerifyOptions{
	AllowSmallOrderA:   true,
	AllowSmallOrderR:   true,
	AllowNonCanonicalA: true,
	CofactorlessVerify: true,
}}

// eddsa is golang-jwt's Ed25519 method with its Verify and Sign done by
// voi.
type eddsa struct{ *jwt.SigningMethodEd25519 }

// Sign is jwt.SigningMethodEd25519's, by voi for an ed25519.PrivateKey:
// Ed25519 signing is deterministic, so the signature is the same bytes
// (TestEdDSASignsAsTheStandardLibrary). Any other crypto.Signer (a key in
// an HSM) signs as golang-jwt has it sign. A key of the wrong length is
// refused, where golang-jwt's (and voi) would panic.
func (m eddsa) Sign(signingString string, key any) ([]byte, error) {
	priv, ok := key.(ed25519.PrivateKey)
	switch {
	case !ok:
		return m.SigningMethodEd25519.Sign(signingString, key)
	case len(priv) != ed25519.PrivateKeySize:
		return nil, jwt.ErrInvalidKey
	}
	return voi.Sign(voi.PrivateKey(priv), []byte(signingString)), nil
}

// Verify is jwt.SigningMethodEd25519's: the same keys taken and refused,
// with the same errors (errors.Is; golang-jwt wraps its key type error in
// a message).
func (m eddsa) Verify(signingString string, sig []byte, key any) error {
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return jwt.ErrInvalidKeyType
	}
	if len(pub) != ed25519.PublicKeySize { // voi panics on it
		return jwt.ErrInvalidKey
	}
	if !voi.VerifyWithOptions(voi.PublicKey(pub), []byte(signingString), sig, stdLibRules) {
		return jwt.ErrEd25519Verification
	}
	return nil
}
