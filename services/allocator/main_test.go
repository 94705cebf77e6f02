package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
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
	_, err := parse([]string{"-join-key-file", priv, "-backfill-min-interval=-1s", "-capacity-interval=0s"})
	if err == nil || !strings.Contains(err.Error(), "backfill-min-interval") || !strings.Contains(err.Error(), "capacity-interval") {
		t.Fatalf("parse = %v, want both refused", err)
	}
}
