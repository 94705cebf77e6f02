package testkit_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestLinkedClusterCutsANodeOff: a message published on n1 reaches a
// subscriber on n3 through the routes; with n3 cut off it does not (a
// route round the links, such as one dialled to a gossiped address,
// would carry it); healed, it does again.
func TestLinkedClusterCutsANodeOff(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-node cluster")
	}
	t.Parallel()
	c := testkit.RunLinkedCluster(t)
	if got := testkit.ConnectURL(t, c.URLs(0, 2)).Servers(); len(got) != 2 {
		t.Errorf("a client of n1 and n3 knows of %v: other nodes advertised", got)
	}
	// Each route is dialled by one of its ends: through a link, if every
	// route goes through one.
	testkit.Eventually(t, 10*time.Second, func() bool {
		routes, linked := 0, 0
		for i, s := range c.Servers {
			rz, err := s.Routez(nil)
			if err != nil {
				t.Fatal(err)
			}
			routes += rz.NumRoutes
			for _, l := range c.Links[i] {
				if l != nil {
					linked += l.Connected()
				}
			}
		}
		return routes > 0 && routes == 2*linked
	}, "routes round the links")
	pub := testkit.ConnectURL(t, c.URLs(0), nats.NoReconnect())
	got := testkit.Collect(t, testkit.ConnectURL(t, c.URLs(2), nats.NoReconnect()), "linked.>")
	// reaches publishes on subject until one reaches n3 or the time is up.
	reaches := func(subject string, within time.Duration) bool {
		for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if err := pub.Publish(subject, nil); err != nil {
				t.Fatal(err)
			}
			for _, m := range got() {
				if m.Subject == subject {
					return true
				}
			}
		}
		return false
	}
	if !reaches("linked.before", 10*time.Second) {
		t.Fatal("n3 never got a message from n1")
	}
	c.Cut(2)
	if reaches("linked.cut", 2*time.Second) {
		t.Fatal("n3 got a message from n1 while cut off")
	}
	c.Heal(2)
	if !reaches("linked.healed", 20*time.Second) {
		t.Fatal("n3 got no message from n1 after the heal")
	}
}
