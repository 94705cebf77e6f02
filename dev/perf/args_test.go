package perf

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// target is a stack's addresses, as loadArgs reads them.
type target struct{}

func (target) FrontendURL() string        { return "http://fe" }
func (target) DevIssuerKeyFile() string   { return "/key.pem" }
func (target) NATSURL() string            { return "nats://n" }
func (target) NATSPassword(string) string { return "secret" }

// TestLoadArgsPerLeg: each leg's load tool is given what is its own.
// HTTP/1.1 and idempotency keys are the http leg's alone (a WebSocket's
// upgrade is HTTP/1.1 anyway, and its ticket has no key); the source
// addresses are every frontend leg's; the NATS leg gets its password in
// its environment, never on its command line.
func TestLoadArgsPerLeg(t *testing.T) {
	t.Parallel()
	cfg := Config{Rate: 60, Duration: time.Second, HTTP1: true, Keyed: true, Retries: 8, Connections: 4}
	for _, tc := range []struct {
		via       string
		want, not []string
	}{
		{"http", []string{"-url http://fe", "-token-key /key.pem", "-h2c=false", "-idempotency-keys", "-retries 8", "-source-ips 4"}, []string{"-nats-url"}},
		{"ws", []string{"-url http://fe", "-token-key /key.pem", "-source-ips 4"}, []string{"-h2c=false", "-idempotency-keys", "-retries", "-nats-url"}},
		{"nats", []string{"-nats-url nats://n", "-nats-user operator"}, []string{"-url", "-h2c=false", "secret"}},
	} {
		args, env := loadArgs(cfg, target{}, tc.via)
		line := strings.Join(args, " ") + " "
		for _, w := range tc.want {
			if !strings.Contains(line, " "+w+" ") {
				t.Errorf("%s: %q lacks %q", tc.via, line, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(line, " "+n) {
				t.Errorf("%s: %q has %q", tc.via, line, n)
			}
		}
		if password := slices.Contains(env, "NATS_PASSWORD=secret"); password != (tc.via == "nats") {
			t.Errorf("%s: password in the environment %v", tc.via, password)
		}
	}
}
