package results

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestCatchUpWithTheFrontendsPermissions: the catch-up reads RESULTS with
// what deploy/nats/nats.conf lets the frontend's user do (direct gets,
// replies under its own inbox prefix); it may create no consumer there.
// Not parallel: the configuration reads its passwords from the
// environment.
func TestCatchUpWithTheFrontendsPermissions(t *testing.T) {
	operator := []nats.Option{nats.UserInfo("operator", "operator-pw")}
	missedWhileDisconnected(t, newStackOn(t, configuredServer(t), frontendUser, operator, true, nil))
}

// configuredServer runs a server with deploy/nats/nats.conf, each user's
// password its name and "-pw". Its test may not be parallel: the
// configuration reads the passwords from the environment.
func configuredServer(t *testing.T) *server.Server {
	t.Helper()
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
	return testkit.RunServerWith(t, opts)
}

// frontendUser connects as nats.conf's frontend user.
var frontendUser = []nats.Option{nats.UserInfo("frontend", "frontend-pw"), nats.CustomInboxPrefix("_INBOX_frontend")}

// A frontend whose NATS user may not hear results ends its tracker's Run
// (and so the process) saying so, instead of taking tickets and telling
// no player of them: the server refuses the subscription apart, and
// nats.go's subscribe returned nil (review R4's L2).
func TestResultsSubscriptionRefusedEndsRun(t *testing.T) {
	t.Parallel()
	opts := testkit.ServerOptions(t.TempDir())
	opts.Users = []*server.User{
		{Username: "admin", Password: "admin"},
		{Username: "deaf", Password: "deaf", Permissions: &server.Permissions{
			Subscribe: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{events.Subjects{}.AllResults()}},
		}},
	}
	srv := testkit.RunServerWith(t, opts)
	js := testkit.JetStream(t, testkit.Connect(t, srv, nats.UserInfo("admin", "admin")))
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	nc := testkit.Connect(t, srv, nats.UserInfo("deaf", "deaf"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	tr := New(nc, events.Subjects{}, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(),
		func(string) time.Duration { return time.Hour }, func(context.Context, string) Retry { return RetryNone })
	ran := make(chan error, 1)
	go func() { ran <- tr.Run(t.Context()) }()
	select {
	case err := <-ran:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("Run = %v, want a permissions violation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still running on a subscription the server refused")
	}
}
