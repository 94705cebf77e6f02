package allocator_test

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/local"
)

// TestAnAllocatorWhosePullsAreRefusedSaysSo: an operator reloads the NATS
// configuration and takes the allocator's permission to pull away (a
// mistake in nats.conf). Its pulls are refused from then on, and it
// allocates nothing, so it says so (Refused: the service is not ready,
// and a rollout of that configuration or of a release that needs
// another stops there), whatever else its connection is refused
// meanwhile, until a reload gives the permission back.
func TestAnAllocatorWhosePullsAreRefusedSaysSo(t *testing.T) {
	t.Parallel()
	users := func(pull bool) []*server.User {
		perm := &server.SubjectPermission{Allow: []string{">"}}
		if !pull {
			perm.Deny = []string{"$JS.API.CONSUMER.MSG.NEXT.>", "other.>"}
		}
		return []*server.User{
			{Username: "admin", Password: "admin"},
			{Username: "allocator", Password: "allocator", Permissions: &server.Permissions{Publish: perm}},
		}
	}
	opts := testkit.ServerOptions(t.TempDir())
	opts.Users = users(true)
	s := testkit.RunServerWith(t, opts)
	reload := func(pull bool) {
		t.Helper()
		next := testkit.ServerOptions(opts.StoreDir)
		next.Port = s.Addr().(*net.TCPAddr).Port
		next.Users = users(pull)
		if err := s.ReloadOptions(next); err != nil {
			t.Fatal(err)
		}
	}
	if err := events.Provision(t.Context(), testkit.JetStream(t, testkit.Connect(t, s, nats.UserInfo("admin", "admin"))), events.Topology{}); err != nil {
		t.Fatal(err)
	}
	nc := testkit.Connect(t, s, nats.UserInfo("allocator", "allocator"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	backend := local.New([]local.Target{{Server: allocator.Server{Name: "gs-1", Address: "127.0.0.1", Port: 7000}}})
	a, err := allocator.New(allocator.Config{JoinKey: joinKey}, nc, testkit.JetStream(t, nc), events.Subjects{}, backend, testLog())
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, a.Run)
	<-a.Routing()
	if a.Refused() {
		t.Fatal("refused with every permission")
	}
	reload(false)
	testkit.Eventually(t, 10*time.Second, a.Refused, "pulls refused, and the allocator does not say so")
	// Another publish of its connection refused meanwhile (the last
	// error the connection heard is then not the pull's): still refused.
	for range 15 {
		_ = nc.Publish("other.x", nil)
		time.Sleep(200 * time.Millisecond)
		if !a.Refused() {
			t.Fatal("refused pulls taken for answered ones once another publish was refused")
		}
	}
	reload(true)
	testkit.Eventually(t, 10*time.Second, func() bool { return !a.Refused() }, "pulls allowed again, and the allocator still says they are refused")
}
