package testkit

import (
	"testing"
	"time"
)

// Eventually polls cond every 20 ms until it returns true or timeout
// passes, then fails the test with msg. It is for waiting on outcomes in
// other processes, never for asserting how fast they happen.
func Eventually(tb testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %s: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
