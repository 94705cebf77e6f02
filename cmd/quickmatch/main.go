// Command quickmatch is the operator CLI of a quickmatch deployment:
// queues, tickets, players, matches, drains and dead letters, read and
// steered over NATS as the operator user.
//
// Every command is one entry of commands: its name, its arguments, what it
// does and a function that adds its own flags and returns what runs it.
// A command reads the deployment's state where the services keep it (the
// buckets and streams of pkg/events) and changes it only the way the
// services do (a cancel claims the ticket as the frontend does; a replay
// publishes a ticket as a publisher does).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/natsconn"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
)

// about says what the CLI is: the first line of its help and of its
// package comment (TestHelp checks that they agree).
const about = "quickmatch is the operator CLI of a quickmatch deployment: queues, tickets, players, matches, drains and dead letters, read and steered over NATS as the operator user."

// runFunc runs a command once its flags are parsed, with its positional
// arguments (as many as the command's args names).
type runFunc func(ctx context.Context, s *session, args []string) error

// command is one entry of the CLI. setup adds the command's own flags to
// fs and returns what runs it (reading those flags once parsed).
type command struct {
	name  string // as typed: one word, or two ("deadletters list")
	args  string // its positional arguments, for the usage line: "<ticket id>"
	does  string
	setup func(fs *flag.FlagSet) runFunc
}

// commands are the CLI's commands, in the order the overview lists them.
// A new command is one more entry.
var commands = []command{
	{"queue", "", "waiting tickets, expected wait and matched-wait percentiles per shard and mode", queueCmd},
	{"player", "<player id>", "a player's live ticket and the history of their tickets", playerCmd},
	{"ticket", "<ticket id>", "one ticket: its record, players, claim (with the match it carries) and results", ticketCmd},
	{"cancel", "<ticket id>", "cancel a ticket that has no outcome yet, as the frontend does (its claim decides)", cancelCmd},
	{"match", "<match or ticket id>", "a match (its record, or the one a ticket's claim carries), decision, claims and allocation record", matchCmd},
	{"drain", "<shard>", "stop admitting tickets to a shard (region.tier): new ones get 503 and -reason; its waiting tickets are still matched", drainCmd},
	{"resume", "<shard>", "let a drained shard admit tickets again", resumeCmd},
	{"drains", "", "the drained shards, why and since when", drainsCmd},
	{"deadletters list", "", "the latest dead letters", deadLettersListCmd},
	{"deadletters show", "<seq>", "one dead letter in full, by its sequence in the dead-letter stream", deadLettersShowCmd},
	{"deadletters replay", "<seq>", "publish a dead-lettered ticket again, as a new ticket, on the subject it came by", deadLettersReplayCmd},
}

// examples close the overview.
const examples = `
examples (against make run: set -a; . .data/nats.env; set +a):
  quickmatch queue                   every shard and mode with waiting tickets or recent matches
  quickmatch player -json alice      alice's tickets and results, as JSON (flags before arguments)
  quickmatch cancel t0a1b2c3         cancel a waiting ticket; its players are told
  quickmatch match t0a1b2c3          the match ticket t0a1b2c3 is in, as its claim carries it
  quickmatch deadletters list        then: deadletters show 12, deadletters replay 12
`

// errNoCommand is a bare "quickmatch": the overview is printed to standard
// error and the status is 1, since nothing was done.
var errNoCommand = errors.New("no command given")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(service.ExitCode(os.Stderr, "quickmatch", err))
}

// run finds the command args name, parses its flags and arguments, then
// connects and runs it. Help (-h, help, help COMMAND) returns flag.ErrHelp,
// status 0, having printed what was asked for to stdout. Argument errors
// are found before anything connects.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printOverview(stderr)
		return errNoCommand
	}
	switch {
	case isHelp(args[0]) || args[0] == "help":
		if len(args) > 1 && args[0] == "help" {
			return run(ctx, slices.Concat(args[1:], []string{"-h"}), stdout, stderr)
		}
		printOverview(stdout)
		return flag.ErrHelp
	}
	cmd, rest, err := find(args)
	if err != nil {
		if group := groupOf(args[0]); group != nil && slices.ContainsFunc(args[1:], isHelp) {
			printGroup(stdout, args[0], group)
			return flag.ErrHelp
		}
		return err
	}
	fs := newFlagSet("quickmatch "+cmd.name, cmd.args, strings.TrimSpace("quickmatch "+cmd.name+" "+cmd.args)+": "+cmd.does, stdout)
	var common commonFlags
	common.register(fs)
	runCmd := cmd.setup(fs.FlagSet)
	if err := fs.parse(rest); err != nil {
		return err
	}
	if err := cmd.checkArgs(fs.Args()); err != nil {
		return err
	}
	if err := common.nats.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(common.timeout))
	defer cancel()
	s, err := connect(ctx, common, stdout, stderr)
	if err != nil {
		return err
	}
	defer s.close()
	return runCmd(ctx, s, fs.Args())
}

// find is the command args start with, and the arguments after its name.
func find(args []string) (command, []string, error) {
	var names []string
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c, args[len(words):], nil
		}
		if words[0] == args[0] && len(words) > 1 {
			names = append(names, words[1])
		}
	}
	if len(names) > 0 {
		return command{}, nil, fmt.Errorf("%s: want one of %s (quickmatch -h says what each does)", args[0], strings.Join(names, ", "))
	}
	return command{}, nil, fmt.Errorf("unknown command %q (quickmatch -h lists the commands)", args[0])
}

// checkArgs says what is wrong with the positional arguments of c: their
// number, an id that is not one (an id becomes a subject token or a key,
// so a wildcard or a dot in one would read other players' state), a
// sequence that is not a number. Other arguments are the command's to
// check.
func (c command) checkArgs(args []string) error {
	names := argNames(c.args)
	if len(args) != len(names) {
		if len(names) == 0 {
			return fmt.Errorf("%s takes no arguments, got %q", c.name, args)
		}
		return fmt.Errorf("%s: want %s (flags go before it), got %d arguments", c.name, c.args, len(args))
	}
	for i, name := range names {
		switch {
		case name == "<seq>":
			if n, err := strconv.ParseUint(args[i], 10, 64); err != nil || n == 0 {
				return fmt.Errorf("%s: %s %q: want a stream sequence, 1 or more", c.name, name, args[i])
			}
		case strings.HasSuffix(name, " id>"):
			if err := events.CheckID(args[i]); err != nil {
				return fmt.Errorf("%s: %s: %w", c.name, name, err)
			}
		}
	}
	return nil
}

// argNames splits an args line ("<ticket id> <seq>") into its names.
func argNames(args string) []string {
	var names []string
	for rest := strings.TrimSpace(args); rest != ""; rest = strings.TrimSpace(rest) {
		end := strings.IndexByte(rest, '>')
		if !strings.HasPrefix(rest, "<") || end < 0 {
			return append(names, strings.Fields(rest)...)
		}
		names, rest = append(names, rest[:end+1]), rest[end+1:]
	}
	return names
}

// isHelp is whether arg asks for help.
func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// groupOf are the commands whose first word is word and that have a
// second one ("deadletters list"), nil if none.
func groupOf(word string) []command {
	var group []command
	for _, c := range commands {
		if first, _, two := strings.Cut(c.name, " "); two && first == word {
			group = append(group, c)
		}
	}
	return group
}

// printGroup is the help of a group of commands (quickmatch deadletters -h).
func printGroup(w io.Writer, word string, group []command) {
	fmt.Fprintf(w, "quickmatch %s: one of these commands (quickmatch %s <command> -h: its flags)\n\n", word, word)
	for _, c := range group {
		fmt.Fprintf(w, "  %-32s %s\n", strings.TrimSpace(c.name+" "+c.args), c.does)
	}
}

func printOverview(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nusage: quickmatch <command> [flags] [arguments]   (quickmatch <command> -h: its flags)\n\ncommands:\n", about)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-32s %s\n", strings.TrimSpace(c.name+" "+c.args), c.does)
	}
	fmt.Fprint(w, examples)
}

// commonFlags are every command's flags: how to reach NATS (as the
// services take them, so .data/nats.env sets them), the output and a
// deadline.
type commonFlags struct {
	nats    natsconn.Config
	json    bool
	timeout positiveDuration
}

func (c *commonFlags) register(fs *flagSet) {
	fs.addConn(c.nats.RegisterFlags)
	fs.BoolVar(&c.json, "json", false, "print JSON instead of a table")
	// 10 s: each command is a handful of reads; one that takes longer
	// waits on a NATS that does not answer.
	c.timeout = positiveDuration(10 * time.Second)
	fs.Var(&c.timeout, "timeout", "give up after this long, connecting included (a `duration`)")
}

// session is what a command runs with: JetStream as the operator, the
// deployment's subjects and where and how to print.
type session struct {
	js   jetstream.JetStream
	subj events.Subjects
	out  io.Writer
	json bool
	// claims is the claims bucket once bound (claimsBucket).
	claims *events.Claims
	// close ends the connection.
	close func()
}

// connect opens the operator's connection, or gives up when ctx ends
// (-timeout, Ctrl-C): natsconn.Connect takes no context and waits up to
// 10 s per server URL, so it runs aside, and a connection it opens after
// ctx ended is closed. Its warnings (a reconnect) go to stderr, so
// stdout stays the command's output.
func connect(ctx context.Context, c commonFlags, stdout, stderr io.Writer) (*session, error) {
	if err := events.ValidatePrefix(c.nats.SubjectPrefix); err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	type conn struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan conn, 1)
	go func() {
		nc, err := natsconn.Connect(c.nats, "quickmatch", log)
		done <- conn{nc, err}
	}()
	var nc *nats.Conn
	select {
	case r := <-done:
		if r.err != nil {
			return nil, r.err
		}
		nc = r.nc
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("connect to nats %s: %w", natsconn.Redacted(c.nats.URL), ctx.Err())
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &session{js: js, subj: events.Subjects{Prefix: c.nats.SubjectPrefix}, out: stdout, json: c.json, close: nc.Close}, nil
}
