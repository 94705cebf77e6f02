package deploy

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// The shell scripts (the kind script above all) pass shellcheck. .ci/run
// installs it; elsewhere the test is skipped without it.
func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		testkit.Missing(t, "shellcheck missing (apt-get install shellcheck; .ci/run installs it)")
	}
	root := deploytest.Root(t)
	scripts := []string{"deploy/kind/kind.sh", "tools/kube/build.sh", ".ci/run"}
	for i, s := range scripts {
		scripts[i] = filepath.Join(root, s)
	}
	out, err := exec.Command(sc, append([]string{"--severity=style", "--shell=bash"}, scripts...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}
