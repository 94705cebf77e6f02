package results

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// runTracker starts a tracker on a connection of its own to srv, as
// opts says, calling the roll every rollEvery (0: the default), until
// the test ends.
func runTracker(t *testing.T, srv *server.Server, rollEvery time.Duration, opts ...nats.Option) (*Tracker, *nats.Conn) {
	t.Helper()
	nc := testkit.Connect(t, srv, opts...)
	tr := New(nc, events.Subjects{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(),
		func(string) time.Duration { return time.Hour }, func(context.Context, string) bool { return false })
	if rollEvery > 0 {
		tr.fol.every = rollEvery
	}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	go func() { _ = tr.Run(ctx) }()
	return tr, nc
}

// follow makes a client of tr's frontend follow ticket id.
func follow(t *testing.T, tr *Tracker, id string) Waiting {
	t.Helper()
	w, err := tr.Follow(t.Context(), &events.Ticket{TicketID: id, PlayerID: "p-" + id, CreatedAt: time.Now()}, "")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// ask is b's question of who follows id.
func ask(t *testing.T, b *Tracker, id string) (followed, complete bool) {
	t.Helper()
	followed, complete, err := b.AskFollowed(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return followed, complete
}

// knows waits until b has heard a's roll call.
func knows(t *testing.T, b, a *Tracker) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() bool { return b.roster()[a.fol.instance] }, "a's roll call never heard")
}

// whoFollows: a ticket one frontend's client waits on is followed, asked
// of from another frontend; one tracked with no waiter, or whose waiter
// stopped, is not, every frontend having answered.
func whoFollows(t *testing.T, a, b *Tracker) {
	t.Helper()
	knows(t, b, a)
	w := follow(t, a, "t1")
	if followed, complete := ask(t, b, "t1"); !followed || !complete {
		t.Fatalf("a ticket a client follows: followed %v, complete %v", followed, complete)
	}
	if followed, complete := ask(t, b, "t2"); followed || !complete {
		t.Fatalf("a ticket no one tracks: followed %v, complete %v", followed, complete)
	}
	w.Stop()
	if followed, complete := ask(t, b, "t1"); followed || !complete {
		t.Fatalf("a ticket whose client stopped following: followed %v, complete %v", followed, complete)
	}
}

func TestWhoFollowsATicket(t *testing.T) {
	t.Parallel()
	srv := testkit.RunServer(t)
	a, _ := runTracker(t, srv, 100*time.Millisecond)
	b, _ := runTracker(t, srv, 100*time.Millisecond)
	whoFollows(t, a, b)
}

// TestWhoFollowsATicketWithTheFrontendsPermissions: frontends ask, call
// the roll and answer with what deploy/nats/nats.conf lets their user
// do (answers: allow_responses). Not parallel: configuredServer.
func TestWhoFollowsATicketWithTheFrontendsPermissions(t *testing.T) {
	srv := configuredServer(t)
	a, _ := runTracker(t, srv, 100*time.Millisecond, frontendUser...)
	b, _ := runTracker(t, srv, 100*time.Millisecond, frontendUser...)
	whoFollows(t, a, b)
}

// TestAFrontendThatCannotAnswerLeavesTheQuestionIncomplete: a frontend
// heard at the roll call that does not answer (here cut off from NATS,
// its client following the ticket there) leaves the question incomplete,
// which cancels nothing. Before the roll call, the asker's own answer
// made it complete, and the ticket was cancelled under its follower.
func TestAFrontendThatCannotAnswerLeavesTheQuestionIncomplete(t *testing.T) {
	t.Parallel()
	srv := testkit.RunServer(t)
	a, anc := runTracker(t, srv, 100*time.Millisecond)
	b, _ := runTracker(t, srv, 100*time.Millisecond)
	knows(t, b, a)
	follow(t, a, "t1")
	anc.Close()
	if followed, complete := ask(t, b, "t1"); followed || complete {
		t.Fatalf("followed %v, complete %v; want incomplete", followed, complete)
	}
}

// TestWhoFollowsIncompleteWhereNATSForbidsIt: a frontend whose NATS user
// may not ask or answer (a configuration from before the questions) runs
// on, and its question is incomplete, not "no one follows": a lost
// client's ticket is then kept, as before.
func TestWhoFollowsIncompleteWhereNATSForbidsIt(t *testing.T) {
	t.Parallel()
	srv := testkit.RunServerWith(t, forbidding(t, true))
	a, _ := runTracker(t, srv, 100*time.Millisecond, nats.UserInfo("fe", "fe"))
	follow(t, a, "t1") // Run serves it once its subscriptions were made
	if followed, complete := ask(t, a, "t1"); followed || complete {
		t.Fatalf("followed %v, complete %v; want incomplete", followed, complete)
	}
}

// TestARefusedSubscriptionIsMadeAgain: a frontend started before NATS's
// configuration allowed the questions answers them once it does (its
// subscription made again at a roll call), rather than never: the
// frontends started after the reload then asked, and the older ones,
// whose roll calls now went through, were heard and never answered.
func TestARefusedSubscriptionIsMadeAgain(t *testing.T) {
	t.Parallel()
	opts := forbidding(t, true)
	srv := testkit.RunServerWith(t, opts)
	a, _ := runTracker(t, srv, 100*time.Millisecond, nats.UserInfo("fe", "fe"))
	follow(t, a, "t1")
	time.Sleep(300 * time.Millisecond) // a's subscription refused, and dropped
	allowed := opts.Clone()
	allowed.Users = forbidding(t, false).Users
	if err := srv.ReloadOptions(allowed); err != nil {
		t.Fatal(err)
	}
	b, _ := runTracker(t, srv, 100*time.Millisecond, nats.UserInfo("fe", "fe"))
	knows(t, b, a)
	testkit.Eventually(t, 10*time.Second, func() bool {
		followed, _ := ask(t, b, "t1")
		return followed
	}, "a never answered after the reload")
}

// forbidding is server options with one user, fe/fe, that may do
// anything but (if deny) publish or subscribe to the questions.
func forbidding(t *testing.T, deny bool) *server.Options {
	t.Helper()
	opts := testkit.ServerOptions(t.TempDir())
	perms := &server.Permissions{Publish: &server.SubjectPermission{Allow: []string{">"}}, Subscribe: &server.SubjectPermission{Allow: []string{">"}}}
	if deny {
		follows := events.Subjects{}.AllFollows()
		perms.Publish.Deny, perms.Subscribe.Deny = []string{follows}, []string{follows}
	}
	opts.Users = []*server.User{{Username: "fe", Password: "fe", Permissions: perms}}
	return opts
}
