package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag/envflagtest"
)

// TestHelp: -h prints what the example match function is (as its package
// comment says) and each flag's environment variable, and run returns
// flag.ErrHelp before starting anything, which service.Main turns into
// status 0.
func TestHelp(t *testing.T) { envflagtest.CheckHelp(t, run, about, "SPREAD_MAX") }

// TestHelpExitsZero runs the built binary, once, for what the unit tests
// above cannot see: service.Main's exit status for -h (it was 1, with
// "flag: help requested"). This small binary stands for every service,
// since they all go through service.Main and envflag.
func TestHelpExitsZero(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "matchfunction")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-h")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() != 0 {
		t.Fatalf("-h: %v, stderr %q", err, stderr.String())
	}
	if !strings.HasPrefix(string(out), about+"\n") {
		t.Fatalf("-h printed %q", out)
	}
}
