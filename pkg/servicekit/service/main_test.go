package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
)

func TestExitCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		err     error
		code    int
		printed string
	}{
		{"success", nil, 0, ""},
		{"help asked for", flag.ErrHelp, 0, ""},
		{"help wrapped", fmt.Errorf("parse: %w", flag.ErrHelp), 0, ""},
		{"failure", errors.New("nats: no servers"), 1, "frontend: nats: no servers\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			if code := ExitCode(&out, "frontend", tc.err); code != tc.code || out.String() != tc.printed {
				t.Fatalf("ExitCode = %d, printed %q; want %d, %q", code, out.String(), tc.code, tc.printed)
			}
		})
	}
}

// A service stopped (SIGTERM) while it waits for NATS or its buckets
// exits 0: its run returns the wait's "context canceled", which is no
// failure; the same error without a stop, or any other after one, is.
func TestStopped(t *testing.T) {
	t.Parallel()
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	waited := fmt.Errorf("bind the buckets: %w (last: timeout)", context.Canceled)
	other := errors.New("listen: address in use")
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want error
	}{
		{"stopped while waiting", ended, waited, nil},
		{"canceled without a stop", live, waited, waited},
		{"another error after a stop", ended, other, other},
		{"none", ended, nil, nil},
	} {
		if got := stopped(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
