package service

import (
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
