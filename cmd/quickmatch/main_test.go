package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag/envflagtest"
)

// TestHelp: quickmatch -h, --help and help print the overview of every
// command and return flag.ErrHelp (status 0); a bare quickmatch prints it
// to stderr and fails; each command's -h (or help COMMAND) says what the
// command does and lists its flags with their environment variables,
// those of NATS as every service names them. The package comment says
// what the overview's first line says.
func TestHelp(t *testing.T) {
	t.Parallel()
	envflagtest.CheckDoc(t, about)
	overview := []string{about, "\n  queue ", "\n  player <player id> ", "\n  cancel <ticket id> ",
		"\n  deadletters replay <seq> ", "\n  match <match or ticket id> ", "quickmatch <command> -h"}
	for _, tc := range []struct {
		name       string
		args       []string
		err        error
		out, other []string // in stdout; in stderr
	}{
		{"-h", []string{"-h"}, flag.ErrHelp, overview, nil},
		{"--help", []string{"--help"}, flag.ErrHelp, overview, nil},
		{"help", []string{"help"}, flag.ErrHelp, overview, nil},
		{"no command", nil, errNoCommand, nil, overview},
		{"queue -h", []string{"queue", "-h"}, flag.ErrHelp,
			[]string{"quickmatch queue: waiting tickets", "-nats-url string  (NATS_URL, default nats://127.0.0.1:4222)",
				"-nats-password string  (NATS_PASSWORD)", "\n  -json\n", "-window duration  (default 1m0s)"}, nil},
		{"help cancel", []string{"help", "cancel"}, flag.ErrHelp, []string{"quickmatch cancel <ticket id>: cancel a ticket", "-reason string  (default cancelled by an operator)", "(NATS_USER)"}, nil},
		{"help deadletters replay", []string{"help", "deadletters", "replay"}, flag.ErrHelp, []string{"quickmatch deadletters replay <seq>: publish a dead-lettered ticket again", "(SUBJECT_PREFIX)"}, nil},
		{"deadletters list -h", []string{"deadletters", "list", "--help"}, flag.ErrHelp, []string{"quickmatch deadletters list: ", "-limit number  (default 20)"}, nil},
		{"deadletters -h", []string{"deadletters", "-h"}, flag.ErrHelp, []string{"quickmatch deadletters: ", "\n  deadletters list ", "\n  deadletters replay <seq> "}, nil},
		{"help deadletters", []string{"help", "deadletters"}, flag.ErrHelp, []string{"quickmatch deadletters: ", "\n  deadletters show <seq> "}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr strings.Builder
			err := run(t.Context(), tc.args, &stdout, &stderr)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			for _, c := range []struct {
				got  string
				want []string
			}{{stdout.String(), tc.out}, {stderr.String(), tc.other}} {
				// The first wanted text is how the output starts.
				if len(c.want) > 0 && !strings.HasPrefix(c.got, c.want[0]) {
					t.Errorf("output does not start with %q:\n%s", c.want[0], c.got)
				}
				for _, w := range c.want {
					if !strings.Contains(c.got, w) {
						t.Errorf("output lacks %q:\n%s", w, c.got)
					}
				}
				// Only the connection flags are read from the
				// environment, so only they name a variable.
				for _, generic := range []string{"(JSON", "(TIMEOUT", "(REASON", "(LIMIT", "(WINDOW", "(REGIONS"} {
					if strings.Contains(c.got, generic) {
						t.Errorf("output names %s):\n%s", generic, c.got)
					}
				}
				if len(c.want) == 0 && c.got != "" {
					t.Errorf("unexpected output %q", c.got)
				}
			}
		})
	}
}

// TestArgumentErrors: a wrong command, a missing, extra or malformed
// argument or flag is refused with what is wrong, before anything
// connects: NATS_URL points at a port nobody listens on, so an attempt
// to connect would fail with another error.
func TestArgumentErrors(t *testing.T) {
	t.Setenv("NATS_URL", "nats://127.0.0.1:1")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"drian"}, `unknown command "drian"`},
		{"deadletters alone", []string{"deadletters"}, "deadletters: want one of list, show, replay"},
		{"deadletters unknown", []string{"deadletters", "purge"}, "want one of list, show, replay"},
		{"ticket without id", []string{"ticket"}, "ticket: want <ticket id> (flags go before it), got 0 arguments"},
		{"ticket with two ids", []string{"ticket", "a", "b"}, "got 2 arguments"},
		{"flag after the id", []string{"player", "alice", "-json"}, "got 2 arguments"},
		{"wildcard id", []string{"player", "results.*"}, `player: <player id>: "results.*" has '.'`},
		{"empty id", []string{"match", ""}, "match: <match or ticket id>: empty"},
		{"seq not a number", []string{"deadletters", "show", "last"}, `<seq> "last": want a stream sequence`},
		{"seq zero", []string{"deadletters", "replay", "0"}, `<seq> "0": want a stream sequence`},
		{"queue takes none", []string{"queue", "eu.gold"}, `queue takes no arguments, got ["eu.gold"]`},
		{"unknown flag", []string{"queue", "-deep"}, "flag provided but not defined: -deep"},
		{"flag without value", []string{"cancel", "-reason"}, "flag needs an argument: -reason"},
		{"bad region", []string{"cancel", "-regions", "eu,*", "t1"}, `invalid value "eu,*" for flag -regions`},
		{"user without password", []string{"queue", "-nats-user", "operator"}, "nats-user and nats-password go together"},
		{"no matches", []string{"queue", "-max-matches", "0"}, `invalid value "0" for flag -max-matches: want 1 or more`},
		{"fewer matches", []string{"queue", "-max-matches", "-1"}, `invalid value "-1" for flag -max-matches: want 1 or more`},
		{"no time", []string{"queue", "-timeout", "0s"}, `invalid value "0s" for flag -timeout: want more than 0`},
		{"less time", []string{"ticket", "-timeout", "-1s", "t1"}, `invalid value "-1s" for flag -timeout: want more than 0`},
		{"no dead letters", []string{"deadletters", "list", "-limit", "0"}, `invalid value "0" for flag -limit: want 1 or more`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			err := run(t.Context(), tc.args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}

// TestArgNames: the usage line of a command's arguments is split into
// names, an id's words kept together.
func TestArgNames(t *testing.T) {
	t.Parallel()
	for args, want := range map[string][]string{
		"":                 nil,
		"<ticket id>":      {"<ticket id>"},
		"<match id> <seq>": {"<match id>", "<seq>"},
		"<shard>":          {"<shard>"},
	} {
		if got := argNames(args); !slices.Equal(got, want) {
			t.Errorf("argNames(%q) = %q, want %q", args, got, want)
		}
	}
}

// TestCommandFlagsIgnoreTheEnvironment: a command's own flags are never
// read from the environment (a REASON exported for something else must
// not become what a player is told, a JSON or TIMEOUT must not break
// every command); the connection flags are, as every service reads them.
func TestCommandFlagsIgnoreTheEnvironment(t *testing.T) {
	for k, v := range map[string]string{"REASON": "stale reason", "JSON": "yes", "TIMEOUT": "x", "LIMIT": "-3",
		"WINDOW": "x", "MAX_MATCHES": "0", "REGIONS": "*", "BY": "x"} {
		t.Setenv(k, v)
	}
	t.Setenv("NATS_URL", "nats://127.0.0.1:1") // nobody listens: the connect fails, after parsing
	for _, args := range [][]string{{"queue"}, {"cancel", "t1"}, {"deadletters", "list"}, {"drain", "-reason", "r", "eu.gold"}} {
		var stdout, stderr strings.Builder
		err := run(t.Context(), args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "connect to nats nats://127.0.0.1:1") {
			t.Errorf("%v: err = %v, want the connect to NATS_URL to fail", args, err)
		}
	}
}

// TestConnectEndsWithTheContext: a NATS that accepts and never answers
// holds the CLI until -timeout, or until it is interrupted (the context
// ends), not for the client's own connect timeout per server.
func TestConnectEndsWithTheContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // held open, never answered
		}
	}()
	t.Setenv("NATS_URL", "nats://"+ln.Addr().String())
	var out strings.Builder
	err = run(t.Context(), []string{"queue", "-timeout", "300ms"}, &out, &out)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("-timeout: err = %v, want the deadline", err)
	}
	ctx, interrupt := context.WithCancel(t.Context())
	time.AfterFunc(300*time.Millisecond, interrupt)
	err = run(ctx, []string{"queue", "-timeout", "1h"}, &out, &out)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted: err = %v, want it cancelled", err)
	}
}
