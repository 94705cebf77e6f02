package results

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestCatchUpWithTheFrontendsPermissions: the catch-up reads RESULTS with
// what deploy/nats/nats.conf lets the frontend's user do (direct gets,
// replies under its own inbox prefix); it may create no consumer there.
// Not parallel: the configuration reads its passwords from the
// environment.
func TestCatchUpWithTheFrontendsPermissions(t *testing.T) {
	for _, u := range []string{"frontend", "matcher", "allocator", "matchfunction", "provisioner", "operator"} {
		t.Setenv(strings.ToUpper(u)+"_PASSWORD", u+"-pw")
	}
	t.Setenv("SERVER_NAME", "results-test")
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(filepath.Join(root, "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.HTTPPort, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, 0, true, true
	opts.StoreDir = t.TempDir()
	frontend := []nats.Option{nats.UserInfo("frontend", "frontend-pw"), nats.CustomInboxPrefix("_INBOX_frontend")}
	operator := []nats.Option{nats.UserInfo("operator", "operator-pw")}
	missedWhileDisconnected(t, newStackOn(t, testkit.RunServerWith(t, opts), frontend, operator, true, nil))
}
