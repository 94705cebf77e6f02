package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service/servicetest"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestJoinKeyFileRequired: the allocator does not start without a private
// key to sign join tokens, nor with a public key in its place.
func TestJoinKeyFileRequired(t *testing.T) {
	dir := t.TempDir()
	privPath, pubPath := filepath.Join(dir, "join.key"), filepath.Join(dir, "join.pub")
	if err := jointoken.EnsureKeyPair(privPath, pubPath); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"no key":     {},
		"public key": {"-join-key-file", pubPath},
		"missing":    {"-join-key-file", filepath.Join(dir, "nope")},
	} {
		err := run(t.Context(), append(args, "-nats-url", "nats://127.0.0.1:1", "-ops-addr", "127.0.0.1:0"))
		if err == nil || !strings.Contains(err.Error(), "join") {
			t.Errorf("%s: run = %v", name, err)
		}
	}
	if _, err := os.Stat(privPath); err != nil {
		t.Fatal(err)
	}
}

// TestBackfillPacingIsValidated: a negative -backfill-min-interval, or a
// -capacity-interval (the pace rooms' requests are looked at) that is
// not positive, is refused, both at once, not replaced by a default.
func TestBackfillPacingIsValidated(t *testing.T) {
	dir := t.TempDir()
	priv := filepath.Join(dir, "join.key")
	if err := jointoken.EnsureKeyPair(priv, filepath.Join(dir, "join.pub")); err != nil {
		t.Fatal(err)
	}
	if _, err := parse([]string{"-join-key-file", priv}); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c, err := parse([]string{"-join-key-file", priv, "-backfill-turnover=7"}); err != nil || c.alloc.Backfill.Turnover != 7 {
		t.Fatalf("turnover %d (%v), want 7", c.alloc.Backfill.Turnover, err)
	}
	_, err := parse([]string{"-join-key-file", priv, "-backfill-min-interval=-1s", "-capacity-interval=0s"})
	if err == nil || !strings.Contains(err.Error(), "backfill-min-interval") || !strings.Contains(err.Error(), "capacity-interval") {
		t.Fatalf("parse = %v, want both refused", err)
	}
}

// An allocator (re)started while NATS is away answers /healthz (so that
// a Kubernetes startup or liveness probe does not restart it into a
// crash loop) and says not ready until it is bound; it used to listen
// only once connected. Once ready, it answers the autoscaler webhook.
func TestProbesWhileWaitingForNATS(t *testing.T) {
	t.Parallel()
	priv := joinKeyFile(t)
	servicetest.CheckProbesWhileWaiting(t, run, func(opsAddr string) []string {
		return []string{"-ops-addr", opsAddr, "-join-key-file", priv}
	}, func(addr string) {
		// The autoscaler webhook is served once connected (503 before):
		// an empty review is refused as such, not as not found.
		res, err := http.Post("http://"+addr+"/autoscale", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusServiceUnavailable {
			t.Fatalf("POST /autoscale once ready: %d", res.StatusCode)
		}
	})
}

// A configuration the allocator refuses (a retry deadline past the
// consumer's AckWait) ends it at once, NATS or not; waiting for NATS
// first hid it behind a healthy probe.
func TestBadConfigEndsWithoutNATS(t *testing.T) {
	t.Parallel()
	priv := joinKeyFile(t)
	servicetest.CheckRefusedWithoutNATS(t, run, func(opsAddr string) []string {
		return []string{"-ops-addr", opsAddr, "-join-key-file", priv, "-retry-deadline", "60s"}
	}, "retry deadline")
}

// Until connected, the autoscaler webhook answers 503 (Agones keeps the
// fleet as it is on an error), not 404, which reads as a wrong path.
func TestAutoscaleWhileWaitingForNATS(t *testing.T) {
	t.Parallel()
	priv := joinKeyFile(t)
	addr := servicetest.StartWithoutNATS(t, run, func(opsAddr string) []string {
		return []string{"-ops-addr", opsAddr, "-join-key-file", priv}
	}).Addr
	var code int
	testkit.Eventually(t, 10*time.Second, func() bool {
		res, err := http.Post("http://"+addr+"/autoscale", "application/json", strings.NewReader("{}"))
		if err != nil {
			return false
		}
		res.Body.Close()
		code = res.StatusCode
		return true
	}, "the ops address does not answer while the allocator waits for NATS")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("POST /autoscale while waiting for NATS: %d, want 503", code)
	}
}

// joinKeyFile is a fresh join key pair's private key file.
func joinKeyFile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	priv := filepath.Join(dir, "join.key")
	if err := jointoken.EnsureKeyPair(priv, filepath.Join(dir, "join.pub")); err != nil {
		t.Fatal(err)
	}
	return priv
}

// A kube allocator given a shutdown grace its backend calls may outlast
// is refused at start: a rollout would exit under a call in flight, and
// its match would wait for the reservation to go stale. The local
// backend answers at once, so any grace does.
func TestAKubeAllocatorsGraceCoversItsCalls(t *testing.T) {
	dir := t.TempDir()
	priv := filepath.Join(dir, "join.key")
	if err := jointoken.EnsureKeyPair(priv, filepath.Join(dir, "join.pub")); err != nil {
		t.Fatal(err)
	}
	short := "-shutdown-grace=" + (events.AllocatorStopGrace - time.Second).String()
	_, err := parse([]string{"-join-key-file", priv, "-backend", "kube", short})
	if err == nil || !strings.Contains(err.Error(), "shorter than a kube backend call") {
		t.Fatalf("kube with %s: %v", short, err)
	}
	for _, args := range [][]string{
		{"-backend", "kube"},
		{"-backend", "local", "-shutdown-grace=2s"},
	} {
		if _, err := parse(append([]string{"-join-key-file", priv}, args...)); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}
