package main

import (
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag/envflagtest"
)

// TestHelp: load -h, -help, --help and help print the overview of its
// commands and return flag.ErrHelp (status 0); a bare load prints it to
// stderr and fails; each command's -h (or load help COMMAND) says what the
// command does and lists its flags with their environment variables. The
// package comment says what the overview's first line says.
func TestHelp(t *testing.T) {
	t.Parallel()
	envflagtest.CheckDoc(t, about)
	overview := []string{about, "\n  hold ", "\n  rooms ", "\n  run ", "load <command> -h"}
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
		{"run -h", []string{"run", "-h"}, flag.ErrHelp,
			[]string{"load run: send tickets", "-rate float  (RATE, default 200)", "-source-ips int  (SOURCE_IPS, default 1)", "(PROGRESS, default 5s)"}, nil},
		{"help run", []string{"help", "run"}, flag.ErrHelp, []string{"load run: send tickets", "(TOKEN_KEY)"}, nil},
		{"hold -h", []string{"hold", "-h"}, flag.ErrHelp, []string{"load hold: hold waiting clients", "-clients int  (CLIENTS, default 1000)"}, nil},
		{"rooms -h", []string{"rooms", "--help"}, flag.ErrHelp, []string{"load rooms: fill one game server", "-join-key-file string  (JOIN_KEY_FILE)"}, nil},
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
				if len(c.want) == 0 && c.got != "" {
					t.Errorf("unexpected output %q", c.got)
				}
			}
		})
	}
}
