// Package identity tells the frontend who is calling: it verifies the
// bearer JWTs a studio's identity provider issues to its players and game
// backends, and it holds the two signers the project itself needs, the
// development issuer behind `make run`'s page and the Minter the load tool
// and the tests sign tokens with.
//
// Trust model. A token is accepted only if it is signed with an asymmetric
// algorithm the Verifier allows (RS256, ES256, EdDSA: never "none", never
// an HMAC, so a public key can never be used as an HMAC secret), by a key
// the Verifier trusts (from a JWKS URL, kept fresh and refreshed when a
// token names an unknown key id, at most once per UnknownKIDEvery; or from
// static PEM public keys), names the expected issuer and audience, and is
// inside its validity window (exp required, nbf and iat honoured, with a
// small leeway for clock skew). The caller is then either a player, whose
// id is the configured claim (default "sub") and must be a player id the
// events contract accepts, or the server role (a "scope" claim holding the
// configured server scope), a studio's game backend that may act for any
// player.
//
// Verified tokens are remembered (Config.TokenCacheSize, a bounded cache
// keyed by the SHA-256 of the whole token), so that a ticket's second
// check of its token skips the signature: the time window is still judged
// on every use, an entry lives at most TokenCacheMaxAge, and every read of
// the JWKS (changed or not) retires every entry. cache.go says why each of
// these holds. An EdDSA signature is checked by curve25519-voi under
// crypto/ed25519's exact rules, in about 60% of its time (eddsa.go).
//
// Key ids. A key from a PEM file or a Minter is known by KeyID, a digest of
// its public key (SHA-256 of its PKIX encoding, base64url, 22 characters),
// so the minting side and the verifying side agree on the kid without
// configuring it.
package identity
