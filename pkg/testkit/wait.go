package testkit

import (
	"context"
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

// Run runs a component's Run method in a goroutine until the test ends;
// then it cancels the context, waits for Run to return, and fails the test
// if Run returned an error.
func Run(tb testing.TB, run func(context.Context) error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
}
