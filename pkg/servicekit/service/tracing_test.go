package service

import (
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
)

// TestHelpNamesTracing: the -h of every NATS-backed service (they all
// register the shared flags) says how to turn tracing on.
func TestHelpNamesTracing(t *testing.T) {
	var o Options
	var out strings.Builder
	fs := envflag.NewFlagSet("svc", "svc is a test.")
	o.RegisterFlags(fs)
	fs.SetOutput(&out)
	if err := envflag.Parse(fs, []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(out.String(), tracing.EnvEndpoint) || !strings.Contains(out.String(), "NATS_URL") {
		t.Fatalf("help names not both the flags and %s:\n%s", tracing.EnvEndpoint, out.String())
	}
}
