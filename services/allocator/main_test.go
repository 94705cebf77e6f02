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
