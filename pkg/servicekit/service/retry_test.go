package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// downServer is the URL of a NATS server that is not running yet, and
// starts it: a server started on a random port is stopped, so the URL
// points at a closed port until start runs it there again.
func downServer(t *testing.T) (url string, start func() *server.Server) {
	t.Helper()
	// A port outside the ephemeral range: while the server is down, the
	// service's own redials could otherwise take it as their local port.
	ports, err := testkit.Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	opts := testkit.ServerOptions(t.TempDir())
	opts.Port = ports[0]
	url = fmt.Sprintf("nats://127.0.0.1:%d", ports[0])
	return url, func() *server.Server { return testkit.RunServerWith(t, opts) }
}

// A service started before NATS answers keeps trying and starts once it
// does (it used to exit: "no servers available for connection").
func TestStartRetriesUntilNATSAnswers(t *testing.T) {
	url, startNATS := downServer(t)
	done := startAsync(t, "frontend", options(url, ""))
	select {
	case r := <-done:
		t.Fatalf("Start returned while NATS was down: %v", r.err)
	case <-time.After(700 * time.Millisecond):
	}
	js := testkit.JetStream(t, testkit.Connect(t, startNATS()))
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	startsWithin(t, done, 15*time.Second, "Start did not return once NATS answered")
}

// The provisioning step does the same: it runs once NATS answers.
func TestProvisionRetriesUntilNATSAnswers(t *testing.T) {
	url, startNATS := downServer(t)
	done := make(chan error, 1)
	go func() { done <- Provision(t.Context(), options(url, ""), quiet) }()
	select {
	case err := <-done:
		t.Fatalf("Provision returned while NATS was down: %v", err)
	case <-time.After(700 * time.Millisecond):
	}
	js := testkit.JetStream(t, testkit.Connect(t, startNATS()))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Provision did not return once NATS answered")
	}
	if err := missing(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
}

// Credentials NATS refuses are not retried: waiting does not fix them.
func TestStartFailsFastOnRefusedCredentials(t *testing.T) {
	opts := testkit.ServerOptions(t.TempDir())
	opts.Username, opts.Password = "frontend", "frontend-pw"
	s := testkit.RunServerWith(t, opts)
	o := options(s.ClientURL(), "frontend")
	o.NATS.Password = "wrong"
	select {
	case r := <-startAsync(t, "frontend", o):
		if !errors.Is(r.err, ErrPermanent) || !errors.Is(r.err, nats.ErrAuthorization) {
			t.Fatalf("got %v, want a permanent authorization error", r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start kept retrying refused credentials")
	}
}

// A NATS configuration that cannot work (a URL that does not parse, a
// credentials file with no key in it, a CA file that is not PEM) ends
// start-up at once, like refused credentials; only an unreachable server
// is waited for.
func TestStartFailsFastOnBadNATSConfig(t *testing.T) {
	s := testkit.RunServer(t)
	garbage := filepath.Join(t.TempDir(), "garbage")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Options){
		"url":   func(o *Options) { o.NATS.URL = "nats://127.0.0.1:4222:99" },
		"creds": func(o *Options) { o.NATS.Creds = garbage },
		"ca":    func(o *Options) { o.NATS.TLSCA = garbage },
	} {
		t.Run(name, func(t *testing.T) {
			o := options(s.ClientURL(), "")
			edit(&o)
			select {
			case r := <-startAsync(t, "frontend", o):
				if !errors.Is(r.err, ErrPermanent) {
					t.Fatalf("got %v, want a permanent error", r.err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Start kept retrying a configuration that cannot work")
			}
		})
	}
}

// What waiting can fix is retried; what only a new configuration fixes is
// not.
func TestPermanent(t *testing.T) {
	for err, want := range map[error]bool{
		nats.ErrNoServers:                                                                                        false,
		context.DeadlineExceeded:                                                                                 false,
		&jetstream.APIError{Code: 503, ErrorCode: 10008}:                                                         false,
		&jetstream.APIError{Code: 400, ErrorCode: 10005}:                                                         false, // no suitable peers: a cluster forming
		&jetstream.APIError{Code: 500, ErrorCode: 10074}:                                                         true,  // R3 on one server
		&jetstream.APIError{Code: 500, ErrorCode: 10012}:                                                         false, // consumer create: often transient
		fmt.Errorf("provision: %w", &jetstream.APIError{Code: 400, ErrorCode: 10058}):                            true,  // name in use, other config
		fmt.Errorf("provision: %w", &jetstream.APIError{Code: 500, ErrorCode: 10052}):                            true,  // invalid stream config
		fmt.Errorf("connect: %w", nats.ErrAuthorization):                                                         true,
		errors.Join(context.DeadlineExceeded, fmt.Errorf("%w: publish to $JS.API", nats.ErrPermissionViolation)): true,
		&fs.PathError{Op: "open", Path: "/no/such.creds", Err: fs.ErrNotExist}:                                   true,
	} {
		if got := isPermanent(err); got != want {
			t.Errorf("isPermanent(%v) = %v, want %v", err, got, want)
		}
	}
}

// A topology the server refuses to apply (a live stream whose storage the
// declaration would change, which JetStream cannot do in place) is a
// wrong configuration, not a passing state: the provisioning step ends
// saying so instead of retrying until its Job times out.
func TestProvisionFailsFastOnATopologyTheServerRefuses(t *testing.T) {
	s := testkit.RunServer(t)
	js := testkit.JetStream(t, testkit.Connect(t, s))
	subj := events.Subjects{}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: subj.TicketsStream(), Subjects: []string{"matchmaking.>"}, Storage: jetstream.MemoryStorage,
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Provision(t.Context(), options(s.ClientURL(), ""), quiet) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrPermanent) {
			t.Fatalf("Provision = %v, want a permanent error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Provision still retrying a change the server refuses")
	}
}

// A stop while the dial waits for a server that accepts and never
// answers (a NATS node hung, a cut the network holds) ends start-up
// then, not after the dial's 10 s timeout for each URL, past a pod's
// grace: the dial took no context.
func TestStopWhileDialing(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c // held, never answered
		}
	}()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := start(ctx, "frontend", options("nats://"+ln.Addr().String(), ""))
		done <- err
	}()
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("no dial reached the listener")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("start at a stop: %v, want canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("start still dialing 5 s after its stop")
	}
}

// deniedServer runs a server with two users: "admin", who may do
// anything, and "service", who may not ask for the KV_x bucket's stream
// (a permission missing from a service's NATS user). It returns the
// service's connection, and x's bucket made by the admin.
func deniedServer(t *testing.T) *nats.Conn {
	t.Helper()
	opts := testkit.ServerOptions(t.TempDir())
	opts.Users = []*server.User{
		{Username: "admin", Password: "admin"},
		{Username: "service", Password: "service", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.STREAM.INFO.KV_x", "denied"}},
		}},
	}
	s := testkit.RunServerWith(t, opts)
	admin := testkit.JetStream(t, testkit.Connect(t, s, nats.UserInfo("admin", "admin")))
	if _, err := admin.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "x"}); err != nil {
		t.Fatal(err)
	}
	return testkit.Connect(t, s, nats.UserInfo("service", "service"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
}

// bindX is a try that binds bucket x, each attempt bounded as a bind
// under a cut would be.
func bindX(js jetstream.JetStream) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err := js.KeyValue(ctx, "x")
		return err
	}
}

// A permission the service's NATS user lacks is a wrong configuration:
// Retry ends saying what the server refused, instead of waiting out
// what looks like a timeout while the service is never ready (it did
// until the context ended).
func TestRetryEndsOnAPermissionRefused(t *testing.T) {
	t.Parallel()
	nc := deniedServer(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err = Retry(ctx, nc, quiet, "bind x", bindX(js))
	if !errors.Is(err, ErrPermanent) || !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("Retry = %v, want a permanent permissions violation", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Retry ended with its context: %v", err)
	}
}

// A violation the connection was told of before an attempt (another
// request, long ago) does not make that attempt's timeout permanent:
// the attempt is retried, and a later one that succeeds ends Retry.
func TestRetryIgnoresAnEarlierViolation(t *testing.T) {
	t.Parallel()
	nc := deniedServer(t)
	if err := nc.Publish("denied", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !errors.Is(nc.LastError(), nats.ErrPermissionViolation) {
		if time.Now().After(deadline) {
			t.Fatal("the server never refused the publish")
		}
		time.Sleep(10 * time.Millisecond)
	}
	attempts := 0
	err := Retry(t.Context(), nc, quiet, "flaky", func(context.Context) error {
		if attempts++; attempts < 3 {
			return context.DeadlineExceeded
		}
		return nil
	})
	if err != nil || attempts != 3 {
		t.Fatalf("Retry = %v after %d attempts, want nil after 3", err, attempts)
	}
}

// A violation another goroutine met on the connection during the attempt
// (a publish the user may not make, as a capacity report's to a key it
// may not write) does not make the attempt's timeout permanent: only a
// refused JetStream request or reply inbox would leave its request
// unanswered (review R4's M2).
func TestRetryIgnoresAnotherPublishRefused(t *testing.T) {
	t.Parallel()
	nc := deniedServer(t)
	attempts := 0
	err := Retry(t.Context(), nc, quiet, "flaky", func(context.Context) error {
		if attempts++; attempts >= 3 {
			return nil
		}
		before := nc.LastError()
		if err := nc.Publish("denied", nil); err != nil {
			return err
		}
		deadline := time.Now().Add(5 * time.Second)
		for nc.LastError() == before {
			if time.Now().After(deadline) {
				return errors.New("the server never refused the publish")
			}
			time.Sleep(10 * time.Millisecond)
		}
		return context.DeadlineExceeded
	})
	if err != nil || attempts != 3 {
		t.Fatalf("Retry = %v after %d attempts, want nil after 3", err, attempts)
	}
}
