package results

import (
	"context"
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

// runTracker starts a tracker on a connection of its own to srv, as
// opts says, until the test ends.
func runTracker(t *testing.T, srv *server.Server, opts ...nats.Option) *Tracker {
	t.Helper()
	nc := testkit.Connect(t, srv, opts...)
	tr := New(nc, events.Subjects{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(),
		func(string) time.Duration { return time.Hour }, func(context.Context, string) bool { return false })
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	go func() { _ = tr.Run(ctx) }()
	return tr
}

// whoFollows: a ticket one frontend's client waits on is followed, asked
// of from another frontend; one tracked with no waiter, or whose waiter
// stopped, is not, and the question was answered.
func whoFollows(t *testing.T, a, b *Tracker) {
	t.Helper()
	ask := func(id string) (bool, bool) {
		t.Helper()
		followed, answered, err := b.Followed(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return followed, answered
	}
	// Run serves no Track before its subscriptions are held: the asker's
	// own answer shows its question went round once it has tracked one.
	for _, tr := range []*Tracker{a, b} {
		if err := tr.Track(t.Context(), &events.Ticket{TicketID: "warm", PlayerID: "w"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	tk := events.Ticket{TicketID: "t1", PlayerID: "alice", CreatedAt: time.Now()}
	w, err := a.Follow(t.Context(), &tk, "")
	if err != nil {
		t.Fatal(err)
	}
	if followed, answered := ask("t1"); !followed || !answered {
		t.Fatalf("a ticket a client follows: followed %v, answered %v", followed, answered)
	}
	if followed, answered := ask("t2"); followed || !answered {
		t.Fatalf("a ticket no one tracks: followed %v, answered %v", followed, answered)
	}
	w.Stop()
	if followed, answered := ask("t1"); followed || !answered {
		t.Fatalf("a ticket whose client stopped following: followed %v, answered %v", followed, answered)
	}
}

func TestWhoFollowsATicket(t *testing.T) {
	t.Parallel()
	srv := testkit.RunServer(t)
	whoFollows(t, runTracker(t, srv), runTracker(t, srv))
}

// TestWhoFollowsATicketWithTheFrontendsPermissions: frontends ask and
// answer with what deploy/nats/nats.conf lets their user do. Not
// parallel: the configuration reads its passwords from the environment.
func TestWhoFollowsATicketWithTheFrontendsPermissions(t *testing.T) {
	for _, u := range []string{"frontend", "matcher", "allocator", "matchfunction", "provisioner", "operator"} {
		t.Setenv(strings.ToUpper(u)+"_PASSWORD", u+"-pw")
	}
	t.Setenv("SERVER_NAME", "follows-test")
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
	srv := testkit.RunServerWith(t, opts)
	frontend := []nats.Option{nats.UserInfo("frontend", "frontend-pw"), nats.CustomInboxPrefix("_INBOX_frontend")}
	whoFollows(t, runTracker(t, srv, frontend...), runTracker(t, srv, frontend...))
}

// TestWhoFollowsUnansweredWhereNATSForbidsIt: a frontend whose NATS user
// may not ask or answer (a configuration from before the question) runs
// on, and its question reads as unanswered, not as "no one follows": a
// lost client's ticket is then kept, as before.
func TestWhoFollowsUnansweredWhereNATSForbidsIt(t *testing.T) {
	t.Parallel()
	opts := testkit.ServerOptions(t.TempDir())
	follows := events.Subjects{}.AllFollows()
	opts.Users = []*server.User{{Username: "old", Password: "old", Permissions: &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{">"}, Deny: []string{follows}},
		Subscribe: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{follows}},
	}}}
	srv := testkit.RunServerWith(t, opts)
	a := runTracker(t, srv, nats.UserInfo("old", "old"))
	tk := events.Ticket{TicketID: "t1", PlayerID: "alice", CreatedAt: time.Now()}
	if _, err := a.Follow(t.Context(), &tk, ""); err != nil {
		t.Fatalf("the tracker does not run: %v", err)
	}
	followed, answered, err := a.Followed(t.Context(), "t1")
	if followed || answered || err != nil {
		t.Fatalf("followed %v, answered %v, err %v; want unanswered", followed, answered, err)
	}
}
