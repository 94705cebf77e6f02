package main

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// The frontend refuses to start without a way to tell callers apart
// unless told to trust everyone, and keeps the development issuer on
// loopback.
func TestAuthFlagsCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    authFlags
		addr string
		want string // "" means accepted
	}{
		{"nothing", authFlags{}, ":3000", "no identity provider"},
		{"insecure", authFlags{insecure: true}, ":3000", ""},
		{"jwks", authFlags{jwksURL: "https://id.example.com/jwks.json", issuer: "https://id.example.com/"}, ":3000", ""},
		{"jwks without issuer", authFlags{jwksURL: "https://id.example.com/jwks.json"}, ":3000", "-auth-issuer"},
		{"public keys", authFlags{publicKeys: "a.pem", issuer: "x"}, ":3000", ""},
		{"dev issuer on loopback", authFlags{devKey: "dev.pem"}, "127.0.0.1:3000", ""},
		{"dev issuer on every interface", authFlags{devKey: "dev.pem"}, ":3000", "loopback"},
		{"dev issuer on a public address", authFlags{devKey: "dev.pem"}, "192.0.2.1:3000", "loopback"},
		{"insecure and keys", authFlags{insecure: true, publicKeys: "a.pem", issuer: "x"}, ":3000", "choose one"},
		{"ticket claim", authFlags{publicKeys: "a.pem", issuer: "x", ticketClaim: "qm"}, ":3000", ""},
		{"ticket claim with no identity", authFlags{insecure: true, ticketClaim: "qm"}, ":3000", "-auth-ticket-claim"},
		{"ticket claim with the dev issuer", authFlags{devKey: "dev.pem", ticketClaim: "qm"}, "127.0.0.1:3000", "-auth-ticket-claim"},
	}
	for _, tt := range tests {
		err := tt.f.check(tt.addr)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if err := (&authFlags{}).check(":3000"); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("no identity: %v", err)
	}
}

func TestParsePrefixes(t *testing.T) {
	t.Parallel()
	got, err := parsePrefixes(" 10.0.0.0/8, 192.0.2.7 ,fd00::/8")
	if err != nil || len(got) != 3 || got[1].String() != "192.0.2.7/32" {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := parsePrefixes("nonsense"); err == nil {
		t.Fatal("accepted nonsense")
	}
}

// The rule set comes from -rules (or RULES), as the matchers': the
// frontend has no modes or party limit of its own any more.
func TestRulesFlags(t *testing.T) {
	t.Setenv("RULES", "/etc/quickmatch/rules.json")
	c, err := parseConfig([]string{"-auth-insecure"})
	if err != nil {
		t.Fatal(err)
	}
	if c.rulesFile != "/etc/quickmatch/rules.json" || c.rulesReload != 5*time.Second {
		t.Fatalf("rules %q every %s, want RULES every 5s", c.rulesFile, c.rulesReload)
	}
	if c, err = parseConfig([]string{"-auth-insecure", "-rules=x.json", "-rules-reload=1s"}); err != nil || c.rulesFile != "x.json" || c.rulesReload != time.Second {
		t.Fatalf("flags: %q %s %v", c.rulesFile, c.rulesReload, err)
	}
	for _, args := range [][]string{{"-rules-reload=0"}, {"-modes=1v1"}, {"-max-party=5"}} {
		if _, err := parseConfig(append([]string{"-auth-insecure"}, args...)); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// No file is the default rule set; a file is read and checked, and a
// frontend does not start on one that does not check.
func TestOpenRules(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	cur, err := openRules("", log)
	if err != nil || !slices.Equal(cur.Get().Modes(), []string{"1v1", "2v2", "5v5", "ffa"}) {
		t.Fatalf("no file: %v %v", cur, err)
	}
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.json"), filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, []byte(`{"modes":[{"name":"3v3","teams":2,"team_size":3,"max_wait":"5m"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(`{"modes":[{"name":"3v3","teams":1,"team_size":3,"max_wait":"5m"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if cur, err = openRules(good, log); err != nil || !slices.Equal(cur.Get().Modes(), []string{"3v3"}) {
		t.Fatalf("good file: %v", err)
	}
	for _, path := range []string{bad, filepath.Join(dir, "missing.json")} {
		if _, err := openRules(path, log); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want an error naming the file", path, err)
		}
	}
}

// The rule set's max_wait is the only wait: the frontend has no
// -max-wait of its own to disagree with it (results.ModeWaits).
func TestNoMaxWaitFlag(t *testing.T) {
	t.Parallel()
	if _, err := parseConfig([]string{"-auth-insecure", "-max-wait", "10m"}); err == nil || !strings.Contains(err.Error(), "max-wait") {
		t.Fatalf("-max-wait: %v, want it refused as not defined", err)
	}
}

// -seal-key-file (or SEAL_KEY_FILE) gives the frontend its seal keys; a
// file that does not read as one (missing, not base64, a short key) is
// refused, naming the file, and no flag means no seals.
func TestSealKeyFlag(t *testing.T) {
	dir := t.TempDir()
	good, short := filepath.Join(dir, "good"), filepath.Join(dir, "short")
	if err := os.WriteFile(good, []byte(base64.StdEncoding.EncodeToString(make([]byte, events.MinSealKey))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(short, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := parseConfig([]string{"-auth-insecure"}); err != nil || c.tickets.Seals != nil {
		t.Fatalf("no flag: seals %v, %v", c.tickets.Seals, err)
	}
	t.Setenv("SEAL_KEY_FILE", good)
	if c, err := parseConfig([]string{"-auth-insecure"}); err != nil || c.tickets.Seals == nil {
		t.Fatalf("SEAL_KEY_FILE: seals %v, %v", c.tickets.Seals, err)
	}
	for _, f := range []string{short, filepath.Join(dir, "missing")} {
		if _, err := parseConfig([]string{"-auth-insecure", "-seal-key-file", f}); err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("%s: %v, want an error naming it", f, err)
		}
	}
}
