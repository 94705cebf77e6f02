// Command load drives a quickmatch deployment with headless clients and
// reports what it saw. Its commands are listed in overview, with
// examples. It runs against `make run` or any deployment. See
// BENCHMARKS.md for the method and the figures.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
)

// about says what the load tool is: the first line of its help
// and of its package comment (TestHelp checks that they agree).
const about = "load drives a quickmatch deployment with headless clients and reports what it saw."

// commands are the load tool's commands and what each does, in the order
// the overview lists them; each command's -h starts with its line.
var commands = []struct{ name, does string }{
	{"hold", "hold waiting clients open on one frontend, and report its memory per client"},
	{"rooms", "fill one game server with playing rooms, and report its memory per room"},
	{"run", "send tickets at a fixed rate through the whole stack, and report time to assignment"},
}

// examples close the overview: each command as BENCHMARKS.md runs it.
const examples = `
examples (against make run):
  load run -rate 200 -duration 10s                 tickets end to end, a progress line every 5 s
  load hold -clients 20000 -kind sse -proto h2c    (localstack -services frontend -service-env RATE_LIMIT=0)
  load rooms -rooms 5000 -join-key-file KEY.pem    (a game server alone)
`

// errNoCommand is a bare "load": the overview is printed, to standard
// error, and the status is 1, since nothing was done.
var errNoCommand = errors.New("no command given")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(service.ExitCode(os.Stderr, "load", err))
}

// run dispatches to a command. Help (-h, help, help COMMAND) returns
// flag.ErrHelp, status 0, having printed what was asked for to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printOverview(stderr)
		return errNoCommand
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			return run(ctx, []string{args[1], "-h"}, stdout, stderr)
		}
		printOverview(stdout)
		return flag.ErrHelp
	case "hold":
		return hold(ctx, args[1:], stdout)
	case "rooms":
		return rooms(ctx, args[1:], stdout)
	case "run":
		return runLoad(ctx, args[1:], stdout, stderr)
	default:
		return fmt.Errorf("unknown command %q: want hold, rooms or run (load -h says what each does)", args[0])
	}
}

func printOverview(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nusage: load <command> [flags]   (load <command> -h: its flags)\n\ncommands:\n", about)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-6s %s\n", c.name, c.does)
	}
	fmt.Fprint(w, examples)
}

// flagSet is the flag set of command name: its -h says what the command
// does, then its flags, each with its environment variable (envflag), on
// stdout.
func flagSet(name string, stdout io.Writer) *flag.FlagSet {
	does := ""
	for _, c := range commands {
		if c.name == name {
			does = c.does
		}
	}
	fs := envflag.NewFlagSet("load "+name, "load "+name+": "+does)
	fs.SetOutput(stdout)
	return fs
}

// runID tells one run's players and rooms from another's.
func runID() string { return fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff) }

// printJSON is the -json form of every command's result.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
