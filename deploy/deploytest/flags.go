package deploytest

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

var flagLine = regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`)

// otelVar is a standard variable of the OpenTelemetry SDK that a
// service's -h names (pkg/tracing.EnvHelp): read by the SDK, not a flag.
var otelVar = regexp.MustCompile(`\bOTEL_[A-Z0-9_]*[A-Z0-9]\b`)

// EnvOf returns the environment variables a service reads: one per flag
// its binary lists with -h (pkg/servicekit/envflag), and the OTEL_*
// variables of tracing that -h names. The binaries come
// from QUICKMATCH_BIN_DIR (make test builds them); without it the test is
// skipped locally and fails in CI.
func EnvOf(tb testing.TB, service string) map[string]bool {
	tb.Helper()
	dir := testkit.Env(tb, "QUICKMATCH_BIN_DIR", "make test builds the services and sets it")
	out, _ := exec.Command(filepath.Join(dir, service), "-h").CombinedOutput() // -h exits 2 by design
	env := map[string]bool{}
	for _, m := range flagLine.FindAllStringSubmatch(string(out), -1) {
		env[envflag.EnvName(m[1])] = true
	}
	for _, v := range otelVar.FindAllString(string(out), -1) {
		env[v] = true
	}
	if len(env) == 0 {
		tb.Fatalf("%s -h listed no flags: %s", service, out)
	}
	return env
}
