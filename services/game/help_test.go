package main

import (
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag/envflagtest"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
)

// TestHelp: -h prints what the game server is (as its package comment says) and
// each flag's environment variable, and run returns flag.ErrHelp before
// starting anything, which service.Main turns into status 0.
func TestHelp(t *testing.T) { envflagtest.CheckHelp(t, run, about, "JOIN_PUBLIC_KEYS") }

// TestHelpNamesTracing: -h says how to turn tracing on, with the SDK's
// variables (they are not flags).
func TestHelpNamesTracing(t *testing.T) {
	out := envflagtest.Stdout(t, func() { _ = run(t.Context(), []string{"-h"}) })
	if !strings.Contains(out, tracing.EnvEndpoint) {
		t.Fatalf("help does not name %s:\n%s", tracing.EnvEndpoint, out)
	}
}
