package deploy

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// startConfigured runs nats-server with deploy/nats/nats.conf, each user's
// password being "<user>-pw".
func startConfigured(t *testing.T) *server.Server {
	t.Helper()
	for _, u := range []string{"frontend", "matcher", "allocator", "operator"} {
		t.Setenv(strings.ToUpper(u)+"_PASSWORD", u+"-pw")
	}
	t.Setenv("SERVER_NAME", "perm-test")
	opts, err := server.ProcessConfigFile(filepath.Join(deploytest.Root(t), "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.HTTPPort, opts.NoSigs = "127.0.0.1", -1, 0, true
	opts.StoreDir = t.TempDir()
	s, err := testkit.StartServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// as connects as user and returns the connection and the permission
// errors the server sends it.
func as(t *testing.T, s *server.Server, user string) (*nats.Conn, chan error) {
	t.Helper()
	errs := make(chan error, 64)
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(user, user+"-pw"), nats.CustomInboxPrefix("_INBOX_"+user),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

// refused waits for the server to refuse subject.
func refused(t *testing.T, errs chan error, what, subject string) {
	t.Helper()
	timeout := time.After(2 * time.Second)
	for {
		select {
		case err := <-errs:
			if strings.Contains(err.Error(), "Permissions Violation for "+what+` to "`+subject+`"`) {
				return
			}
		case <-timeout:
			t.Errorf("%s to %q was not refused", what, subject)
			return
		}
	}
}

// Each service's user is refused every subject that is not its own: no
// service can forge another's messages, read what is not its job, read
// another's replies, or delete and purge streams.
func TestNATSPermissionsRefuseWhatIsNotTheirs(t *testing.T) {
	s := startConfigured(t)
	forbidden := map[string]struct{ pub, sub []string }{
		"frontend": {
			pub: []string{"allocations.eu", "pool.eu.gold", "deadletter.matcher", "$KV.capacity.eu", "$KV.leases.eu-gold",
				"$JS.API.STREAM.DELETE.TICKETS", "$JS.API.STREAM.PURGE.RESULTS", "$JS.API.CONSUMER.DELETE.TICKETS.matcher"},
			sub: []string{"matchmaking.>", "allocations.>", "pool.>", "_INBOX_matcher.x", "$KV.claims.>", ">"},
		},
		"matcher": {
			pub: []string{"matchmaking.eu.gold", "cancels.eu.gold", "deadletter.allocator", "$KV.capacity.eu", "$KV.tickets.t1",
				"$JS.API.STREAM.DELETE.POOL", "$JS.API.STREAM.PURGE.TICKETS"},
			sub: []string{"results.>", "allocations.>", "_INBOX_frontend.x", "deliver.allocator"},
		},
		"allocator": {
			pub: []string{"allocations.eu", "pool.eu.gold", "cancels.eu.gold", "$KV.leases.x", "$KV.matches.m1", "$KV.tickets.t1",
				"$JS.API.STREAM.DELETE.ALLOCATIONS", "$JS.API.STREAM.PURGE.ALLOCATIONS"},
			sub: []string{"results.>", "matchmaking.>", "cancels.>", "_INBOX_matcher.x"},
		},
		"operator": {
			pub: []string{"$JS.API.STREAM.DELETE.TICKETS", "$JS.API.STREAM.PURGE.TICKETS"},
		},
	}
	for user, f := range forbidden {
		t.Run(user, func(t *testing.T) {
			nc, errs := as(t, s, user)
			for _, subj := range f.pub {
				if err := nc.Publish(subj, []byte("x")); err != nil {
					t.Fatal(err)
				}
				refused(t, errs, "Publish", subj)
			}
			for _, subj := range f.sub {
				if _, err := nc.SubscribeSync(subj); err != nil {
					t.Fatal(err)
				}
				refused(t, errs, "Subscription", subj)
			}
		})
	}
}

// What each service needs is allowed: its own publishes reach a
// subscriber, and its subscriptions are not refused.
func TestNATSPermissionsAllowTheirOwn(t *testing.T) {
	s := startConfigured(t)
	op, _ := as(t, s, "operator")
	allowed := map[string]struct{ pub, sub []string }{
		"frontend":  {pub: []string{"matchmaking.eu.gold", "cancels.eu.gold", "results.alice", "deadletter.frontend"}, sub: []string{"results.>", "_INBOX_frontend.r1"}},
		"matcher":   {pub: []string{"pool.eu.gold", "allocations.eu", "results.alice", "deadletter.matcher"}, sub: []string{"cancels.>", "_INBOX_matcher.r1"}},
		"allocator": {pub: []string{"results.alice", "deadletter.allocator", "matchmaking.eu.gold"}, sub: []string{"deliver.allocator", "_INBOX_allocator.r1"}},
	}
	for user, a := range allowed {
		t.Run(user, func(t *testing.T) {
			nc, errs := as(t, s, user)
			for _, subj := range a.pub {
				sub, err := op.SubscribeSync(subj)
				if err != nil {
					t.Fatal(err)
				}
				_ = op.Flush()
				if err := nc.Publish(subj, []byte(user)); err != nil {
					t.Fatal(err)
				}
				if _, err := sub.NextMsg(2 * time.Second); err != nil {
					t.Errorf("%s's publish to %s did not arrive: %v", user, subj, err)
				}
				_ = sub.Unsubscribe()
			}
			for _, subj := range a.sub {
				if _, err := nc.SubscribeSync(subj); err != nil {
					t.Fatal(err)
				}
			}
			_ = nc.Flush()
			select {
			case err := <-errs:
				t.Errorf("%s: %v", user, err)
			case <-time.After(300 * time.Millisecond):
			}
		})
	}
}

// Without credentials, or with a wrong password, nothing connects.
func TestNATSRefusesStrangers(t *testing.T) {
	s := startConfigured(t)
	for _, opt := range []nats.Option{nil, nats.UserInfo("frontend", "wrong"), nats.UserInfo("player", "player-pw")} {
		opts := []nats.Option{nats.MaxReconnects(0)}
		if opt != nil {
			opts = append(opts, opt)
		}
		nc, err := nats.Connect(s.ClientURL(), opts...)
		if err == nil {
			nc.Close()
			t.Errorf("connected with %v", fmt.Sprint(opt != nil))
			continue
		}
		if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("refused, but not for authorization: %v", err)
		}
	}
}
