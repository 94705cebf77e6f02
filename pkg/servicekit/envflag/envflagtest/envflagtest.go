// Package envflagtest holds the checks every command's help test makes,
// so that the commands cannot drift apart in how they answer -h.
package envflagtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// CheckHelp checks the command under test (the package in the current
// directory, as go test runs it): -h, -help and --help return flag.ErrHelp
// before starting anything (service.ExitCode turns it into status 0) and
// print about first, then each flag with its environment variable, of
// which env is one; and CheckDoc holds.
func CheckHelp(t *testing.T, run func(context.Context, []string) error, about, env string) {
	t.Helper()
	CheckDoc(t, about)
	for _, arg := range []string{"-h", "-help", "--help"} {
		var err error
		out := Stdout(t, func() { err = run(t.Context(), []string{arg}) })
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s: err = %v, want flag.ErrHelp", arg, err)
		}
		if first, _, _ := strings.Cut(out, "\n"); first != about {
			t.Fatalf("%s: first line %q, want %q", arg, first, about)
		}
		if !namesEnv(out, env) {
			t.Fatalf("%s: help names no environment variable %s:\n%s", arg, env, out)
		}
	}
}

// namesEnv says whether help out lists a flag read from environment
// variable env: envflag.PrintUsage writes "(ENV)" or "(ENV, default ...)"
// after the flag, so "NATS_URL" is not found in "(NATS_URL_FILE)".
func namesEnv(out, env string) bool {
	return strings.Contains(out, "  ("+env+")") || strings.Contains(out, "  ("+env+", default ")
}

// CheckDoc checks that the package comment of the command in the current
// directory starts with "Command " and about (line breaks aside): about is
// the first line of -h, the comment is what go doc shows, and both say
// what the command is, so they must say the same.
func CheckDoc(t *testing.T, about string) {
	t.Helper()
	if err := docDiffers(".", about); err != nil {
		t.Fatal(err)
	}
}

// docDiffers says how the package comment of the non-test Go files in dir
// differs from "Command " and about; nil if it starts with them. Each
// file is parsed alone, up to its package clause (parser.ParseDir is
// deprecated).
func docDiffers(dir, about string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return err
	}
	var doc string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		if f.Doc != nil {
			doc += " " + f.Doc.Text()
		}
	}
	doc = strings.Join(strings.Fields(doc), " ")
	if want := "Command " + about; !strings.HasPrefix(doc, want) {
		return fmt.Errorf("%s: the package comment does not start with the first line of -h:\n got: %.*s\nwant: %s", dir, len(want), doc, want)
	}
	return nil
}

// Stdout is what f wrote to standard output, where -h writes. It swaps
// os.Stdout, so a test that calls it must not run in parallel.
func Stdout(t *testing.T, f func()) string {
	t.Helper()
	tmp, err := os.CreateTemp(t.TempDir(), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	saved := os.Stdout
	os.Stdout = tmp
	defer func() { os.Stdout = saved }()
	f()
	b, err := os.ReadFile(tmp.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
