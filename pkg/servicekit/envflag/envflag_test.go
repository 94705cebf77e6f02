package envflag

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Setenv("NATS_URL", "nats://env:4222")
	t.Setenv("PORT", "81")
	t.Setenv("WORKERS", "not-a-number")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	url := fs.String("nats-url", "nats://default", "")
	port := fs.Int("port", 80, "")
	name := fs.String("name", "default", "")
	if err := Parse(fs, []string{"-port", "82"}); err != nil {
		t.Fatal(err)
	}
	if *url != "nats://env:4222" || *port != 82 || *name != "default" {
		t.Fatalf("got %q %d %q", *url, *port, *name)
	}
	fs2 := flag.NewFlagSet("y", flag.ContinueOnError)
	fs2.Int("workers", 1, "")
	if err := Parse(fs2, nil); err == nil {
		t.Fatal("a bad environment value was accepted")
	}
}

// TestHelp: -h, -help and --help print what the program is first, then
// every flag with its environment variable, type and default, and return
// flag.ErrHelp (which mains turn into status 0).
func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		t.Run(arg, func(t *testing.T) {
			var out strings.Builder
			fs := NewFlagSet("frontend", "frontend takes match requests from players.")
			fs.SetOutput(&out)
			fs.String("nats-url", "nats://127.0.0.1:4222", "NATS server")
			fs.Int("rate-limit", 0, "requests per `second`")
			fs.Bool("trust-proxy", false, "believe X-Forwarded-For")
			fs.String("rules", "", "rule set file")
			err := Parse(fs, []string{arg})
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("err = %v, want flag.ErrHelp", err)
			}
			got := out.String()
			if first, _, _ := strings.Cut(got, "\n"); first != "frontend takes match requests from players." {
				t.Fatalf("first line %q, want the about line; all:\n%s", first, got)
			}
			for _, want := range []string{
				"usage: frontend [flags]",
				"-nats-url string  (NATS_URL, default nats://127.0.0.1:4222)\n    \tNATS server",
				"-rate-limit second  (RATE_LIMIT, default 0)",
				"-trust-proxy  (TRUST_PROXY)\n",
				"-rules string  (RULES)\n",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("help lacks %q:\n%s", want, got)
				}
			}
		})
	}
}

// TestParseErrorPrintedOnce: a bad flag is returned, not also printed
// with the whole usage, since the caller prints the error.
func TestParseErrorPrintedOnce(t *testing.T) {
	var out strings.Builder
	fs := NewFlagSet("matcher", "matcher forms matches.")
	fs.SetOutput(&out)
	fs.Int("workers", 1, "")
	err := Parse(fs, []string{"-nope"})
	if err == nil || errors.Is(err, flag.ErrHelp) || !strings.Contains(err.Error(), "-h lists the flags") {
		t.Fatalf("err = %v", err)
	}
	if out.Len() != 0 {
		t.Fatalf("a parse error printed %q", out.String())
	}
}
