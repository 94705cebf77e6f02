package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/natsconn"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func options(url, user string) Options {
	o := Options{NATS: natsconn.Config{URL: url}, LogFormat: "text", LogLevel: "error"}
	if user != "" {
		o.NATS.User, o.NATS.Password = user, user+"-pw"
	}
	return o
}

type started struct {
	env *Env
	err error
}

// start is New then Connect: a service started.
func start(ctx context.Context, name string, o Options) (*Env, error) {
	env, err := New(ctx, name, o)
	if err != nil {
		return nil, err
	}
	if err := env.Connect(ctx); err != nil {
		return nil, err
	}
	return env, nil
}

// startAsync runs start in the background; the test ends it.
func startAsync(t *testing.T, name string, o Options) <-chan started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan started, 1)
	go func() {
		env, err := start(ctx, name, o)
		done <- started{env, err}
	}()
	t.Cleanup(cancel)
	return done
}

// startsWithin waits for startAsync's Start to succeed, failing the test
// with msg after within.
func startsWithin(t *testing.T, done <-chan started, within time.Duration, msg string) {
	t.Helper()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		r.env.Close()
	case <-time.After(within):
		t.Fatal(msg)
	}
}

func streamNames(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	l := js.StreamNames(t.Context())
	var names []string
	for n := range l.Name() {
		names = append(names, n)
	}
	if l.Err() != nil {
		t.Fatal(l.Err())
	}
	return names
}

// A service creates nothing: it waits until the topology exists, then
// starts. (Every service used to provision at start, which needs a NATS
// user allowed to edit every stream.)
func TestStartWaitsForTheTopologyAndCreatesNothing(t *testing.T) {
	s := testkit.RunServer(t)
	js := testkit.JetStream(t, testkit.Connect(t, s))
	done := startAsync(t, "frontend", options(s.ClientURL(), ""))
	select {
	case r := <-done:
		if r.env != nil {
			r.env.Close()
		}
		t.Fatalf("Start returned before the topology was provisioned (err %v); streams: %v", r.err, streamNames(t, js))
	case <-time.After(time.Second):
	}
	if names := streamNames(t, js); len(names) != 0 {
		t.Fatalf("a starting service created streams: %v", names)
	}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	startsWithin(t, done, 10*time.Second, "Start did not return once the topology existed")
}

// A missing bucket (what a new version adds) is waited for as well, and a
// service whose context ends while it waits says what it waited for.
func TestWaitForTopologyNamesWhatIsMissing(t *testing.T) {
	s := testkit.RunServer(t)
	js := testkit.JetStream(t, testkit.Connect(t, s))
	topo := events.Topology{}
	if err := events.Provision(t.Context(), js, topo); err != nil {
		t.Fatal(err)
	}
	bucket := topo.Buckets()[len(topo.Buckets())-1].Bucket
	if err := js.DeleteKeyValue(t.Context(), bucket); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
	defer cancel()
	err := WaitForTopology(ctx, js, topo, quiet)
	if !errors.Is(err, ErrTopologyMissing) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "bucket "+bucket) {
		t.Fatalf("got %v, want the missing bucket %s named", err, bucket)
	}
	if err := events.Provision(t.Context(), js, topo); err != nil {
		t.Fatal(err)
	}
	// Shard consumers of a region nobody provisioned are not waited for:
	// the matcher workers bind to them as they take their shards.
	ctx, cancel = context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := WaitForTopology(ctx, js, events.Topology{Regions: events.Regions{"mars"}}, quiet); err != nil {
		t.Fatal(err)
	}
}

// -provision provisions the topology and ends the process with status 0,
// running nothing else.
func TestProvisionFlagProvisionsAndExits(t *testing.T) {
	s := testkit.RunServer(t)
	js := testkit.JetStream(t, testkit.Connect(t, s))
	type exited int
	exit = func(code int) { panic(exited(code)) }
	t.Cleanup(func() { exit = os.Exit })
	o := options(s.ClientURL(), "")
	o.Provision, o.Regions = true, events.Regions{"eu"}
	code := func() (code exited) {
		defer func() { code = recover().(exited) }()
		env, err := New(t.Context(), "matcher", o)
		t.Fatalf("New returned %v, %v instead of exiting", env, err)
		return -1
	}()
	if code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if err := missing(t.Context(), js, events.Topology{Regions: events.Regions{"eu"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Consumer(t.Context(), "TICKETS", events.ShardConsumer("eu", "gold")); err != nil {
		t.Fatalf("shard consumer: %v", err)
	}
}

// With the users of deploy/nats/nats.conf: the provisioner provisions,
// then every service's user binds. A service started first waits, and
// starts once the provisioner has run; a service's user cannot provision.
func TestProvisionerThenServicesWithTheRealUsers(t *testing.T) {
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"frontend", "matcher", "allocator", "matchfunction", "provisioner", "operator"} {
		t.Setenv(strings.ToUpper(u)+"_PASSWORD", u+"-pw")
	}
	t.Setenv("SERVER_NAME", "service-test")
	opts, err := server.ProcessConfigFile(filepath.Join(root, "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.HTTPPort, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, 0, true, true
	opts.StoreDir = t.TempDir()
	s, err := testkit.StartServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)

	early := startAsync(t, "frontend", options(s.ClientURL(), "frontend"))
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if err := Provision(ctx, options(s.ClientURL(), "frontend"), quiet); err == nil {
		t.Fatal("the frontend's user provisioned the topology")
	}
	if err := Provision(t.Context(), options(s.ClientURL(), "provisioner"), quiet); err != nil {
		t.Fatal(err)
	}
	// A service given another's user (a secret mounted wrong) ends,
	// saying what the server refused, instead of waiting unready: the
	// frontend's user may not read the matcher's replies.
	// No deadline on the context, as a service's: each request has
	// the client's own timeout.
	wrongCtx, cancelWrong := context.WithCancel(t.Context())
	defer time.AfterFunc(20*time.Second, cancelWrong).Stop()
	if _, err := start(wrongCtx, "matcher", options(s.ClientURL(), "frontend")); !errors.Is(err, ErrPermanent) || !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("the matcher as the frontend's user: %v, want a permanent permissions violation", err)
	}
	for _, svc := range []string{"matcher", "allocator"} {
		r := <-startAsync(t, svc, options(s.ClientURL(), svc))
		if r.err != nil {
			t.Fatalf("%s: %v", svc, r.err)
		}
		r.env.Close()
	}
	startsWithin(t, early, 10*time.Second, "the frontend did not start once the topology existed")
}
