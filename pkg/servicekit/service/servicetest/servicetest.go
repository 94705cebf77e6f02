// Package servicetest checks what every service's main shares: how it
// starts while NATS is away.
package servicetest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// Run is a service's run (its main's: flags, and a context that ends it).
type Run func(ctx context.Context, args []string) error

// Running is a service's run going on in a test.
type Running struct {
	// Addr is the ops address it was given.
	Addr string
	done chan struct{}
	err  error
}

// Ended is closed once run returned; Err is then what it returned.
func (r *Running) Ended() <-chan struct{} { return r.done }

// Err is run's error, once Ended is closed.
func (r *Running) Err() error { return r.err }

// Start runs run with -nats-url natsURL and args (given the ops address
// it picks). At the test's end run is stopped and, unless it ended
// before, must return within 30 s, nil or canceled (a stop while
// waiting, which service.Main exits 0 for).
func Start(t *testing.T, run Run, natsURL string, args func(opsAddr string) []string) *Running {
	t.Helper()
	ports, err := testkit.Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	r := &Running{Addr: "127.0.0.1:" + strconv.Itoa(ports[0]), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		r.err = run(ctx, append([]string{"-nats-url", natsURL, "-log-level", "error"}, args(r.Addr)...))
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done: // the test has looked at how it ended
			cancel()
			return
		default:
		}
		cancel()
		select {
		case <-r.done:
			if r.err != nil && !errors.Is(r.err, context.Canceled) {
				t.Errorf("run at its stop: %v", r.err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not end 30 s after its context did")
		}
	})
	return r
}

// StartWithoutNATS is Start with NATS unreachable (port 1, where nothing
// answers).
func StartWithoutNATS(t *testing.T, run Run, args func(opsAddr string) []string) *Running {
	t.Helper()
	return Start(t, run, "nats://127.0.0.1:1", args)
}

// CheckProbesWhileWaiting runs a service's run with NATS behind a link
// cut from the start, the topology provisioned, and checks that its ops
// address answers while it waits for NATS: /healthz 200 (alive:
// Kubernetes must not restart it) and /readyz 503 (no work sent to it).
// It then heals the link, waits for /readyz 200 and calls ready (if not
// nil) with the ops address. args are run's flags but -nats-url, given
// the ops address (the flag's value, host:port).
func CheckProbesWhileWaiting(t *testing.T, run Run, args func(opsAddr string) []string, ready func(addr string)) {
	t.Helper()
	srv := testkit.RunServer(t)
	admin := testkit.JetStream(t, testkit.Connect(t, srv))
	if err := events.Provision(t.Context(), admin, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	link := testkit.NewLink(t, srv.Addr().String())
	link.Cut(testkit.Both)
	r := Start(t, run, link.URL(), args)

	// Polled until run answers, unless it ends first (its error said).
	until := func(path string, want int) func() bool {
		return func() bool {
			select {
			case <-r.Ended():
				t.Fatalf("run ended while NATS was cut off or after: %v", r.Err())
			default:
			}
			return status(r.Addr, path) == want
		}
	}
	testkit.Eventually(t, 10*time.Second, until("/healthz", http.StatusOK), "no /healthz from a service waiting for NATS (a startup probe would restart it)")
	if got := status(r.Addr, "/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz of a service waiting for NATS: %d, want 503", got)
	}
	link.Heal()
	testkit.Eventually(t, 30*time.Second, until("/readyz", http.StatusOK), "not ready once NATS answered")
	if ready != nil {
		ready(r.Addr)
	}
}

// CheckRefusedWithoutNATS runs a service's run with args (a
// configuration it must refuse, given its ops address) and NATS
// unreachable, and checks that run ends at once with an error naming
// want: a bad configuration must not wait for NATS behind a healthy
// probe, where nobody sees it.
func CheckRefusedWithoutNATS(t *testing.T, run Run, args func(opsAddr string) []string, want string) {
	t.Helper()
	r := StartWithoutNATS(t, run, args)
	select {
	case <-r.Ended():
		if err := r.Err(); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("run = %v, want an error naming %q", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("run still waiting for NATS 10 s on with a configuration it must refuse (%q)", want)
	}
}

// status is the status of GET path at addr, or 0 when nothing answers.
func status(addr, path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s%s", addr, path), nil)
	if err != nil {
		return 0
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}
