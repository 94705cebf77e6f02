package stack_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/dev/stack"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// quickmatchBin is the CLI in the binaries' directory (make build-race puts
// it there), else built here as TestMain builds the services, with -race.
func quickmatchBin(t *testing.T) string {
	t.Helper()
	path := filepath.Join(binDir, "quickmatch")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "quickmatch")
	cmd := exec.Command("go", "build", "-race", "-o", path, "./cmd/quickmatch")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build cmd/quickmatch: %v\n%s", err, out)
	}
	return path
}

// ctlRunner runs the CLI as an operator does after `set -a; . .data/nats.env;
// set +a`: NATS_URL, NATS_USER=operator and NATS_PASSWORD in the environment.
type ctlRunner struct {
	bin string
	env []string
}

// Only what the test means to set: a REGIONS, SUBJECT_PREFIX or
// NATS_CREDS of the developer's shell would change what it runs.
func newCtl(t *testing.T, s *stack.Stack) ctlRunner {
	return ctlRunner{bin: quickmatchBin(t), env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"NATS_URL=" + s.NATSURL(), "NATS_USER=operator", "NATS_PASSWORD=" + s.NATSPassword("operator")}}
}

// run is the CLI's stdout, or an error with its exit status and stderr.
func (c ctlRunner) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), c.bin, args...)
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(err.Error() + ": " + stderr.String())
	}
	return stdout.String(), nil
}

func (c ctlRunner) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.run(t, args...)
	if err != nil {
		t.Fatalf("quickmatch %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// json runs the CLI (args with -json where its flags go) and decodes its
// output into v; false when it failed.
func (c ctlRunner) json(t *testing.T, v any, args ...string) bool {
	t.Helper()
	out, err := c.run(t, args...)
	if err != nil {
		t.Logf("quickmatch %s: %v", strings.Join(args, " "), err)
		return false
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("quickmatch %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return true
}
