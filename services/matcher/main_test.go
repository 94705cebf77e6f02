package main

import (
	"path/filepath"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service/servicetest"
)

// A matcher (re)started while NATS is away answers /healthz (so that a
// Kubernetes startup or liveness probe does not restart it into a crash
// loop) and says not ready until it is bound; it used to listen only
// once connected.
func TestProbesWhileWaitingForNATS(t *testing.T) {
	t.Parallel()
	servicetest.CheckProbesWhileWaiting(t, run, func(opsAddr string) []string {
		return []string{"-ops-addr", opsAddr, "-worker-id", "w1"}
	}, nil)
}

// A rule set file that does not read ends the matcher at once, NATS or
// not: waiting for NATS first hid it behind a healthy probe.
func TestBadRulesEndWithoutNATS(t *testing.T) {
	t.Parallel()
	servicetest.CheckRefusedWithoutNATS(t, run, func(opsAddr string) []string {
		return []string{"-ops-addr", opsAddr, "-worker-id", "w1", "-rules", "/nonexistent/rules.json"}
	}, "/nonexistent/rules.json")
}

// A seal key file or match seal key file that does not read (missing, a
// short key) ends the matcher at once, naming the file, NATS or not.
func TestBadSealKeysEndWithoutNATS(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{"-seal-key-file", "-match-seal-key-file"} {
		t.Run(flag, func(t *testing.T) {
			t.Parallel()
			servicetest.CheckRefusedWithoutNATS(t, run, func(opsAddr string) []string {
				return []string{"-ops-addr", opsAddr, "-worker-id", "w1", flag, "/nonexistent/seal.keys"}
			}, "/nonexistent/seal.keys")
		})
	}
}

// A match seal key file that holds a key of the seal key file (the
// frontends hold that one, and could seal a match with it) ends the
// matcher at once, NATS or not.
func TestMatchSealKeysSharedWithTheFrontendsEndWithoutNATS(t *testing.T) {
	t.Parallel()
	keys := filepath.Join(t.TempDir(), "seal.keys")
	if err := events.EnsureSealKeyFile(keys); err != nil {
		t.Fatal(err)
	}
	servicetest.CheckRefusedWithoutNATS(t, run, func(opsAddr string) []string {
		return []string{"-ops-addr", opsAddr, "-worker-id", "w1", "-seal-key-file", keys, "-match-seal-key-file", keys}
	}, "which the frontends hold")
}
