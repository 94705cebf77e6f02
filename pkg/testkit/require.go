package testkit

import (
	"os"
	"testing"
)

// Missing stops a test that needs something this machine lacks (a
// binary, a variable make test sets): skipped on a developer's machine,
// failed in CI (CI set), where .ci/run and make test provide everything.
func Missing(tb testing.TB, what string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s (CI must provide it)", what)
	}
	tb.Skipf("%s; skipped outside CI", what)
}

// Env is the value of the environment variable name, or Missing when it
// is unset; how says what sets it.
func Env(tb testing.TB, name, how string) string {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(tb, name+" is not set: "+how)
	}
	return v
}
