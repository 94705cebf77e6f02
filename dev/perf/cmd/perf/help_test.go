package main

import (
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag/envflagtest"
)

// TestHelp: -h prints what perf is (as its package comment says) and
// each flag's environment variable, and run returns flag.ErrHelp before
// starting anything, which service.ExitCode turns into status 0.
func TestHelp(t *testing.T) { envflagtest.CheckHelp(t, run, about, "RATE") }
