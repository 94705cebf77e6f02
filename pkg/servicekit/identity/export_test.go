package identity

import "time"

// Hooks for the tests of the token cache.

// SetClock makes v judge time by now.
func SetClock(v *Verifier, now func() time.Time) { v.now = now }

// OnVerify makes v call f for each token it checks in full.
func OnVerify(v *Verifier, f func()) { v.onVerify = f }

// CacheLen is how many verified tokens v holds.
func CacheLen(v *Verifier) int {
	if v.cache == nil {
		return 0
	}
	return v.cache.len()
}

// EdDSA is the EdDSA method this package registers.
type EdDSA = eddsa
