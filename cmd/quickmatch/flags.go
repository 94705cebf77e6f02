package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
)

// Flags. Only the connection flags (natsconn.Config's, as every service
// names them) are also read from the environment, so `. .data/nats.env`
// points the CLI at a deployment. A command's own flags are not, unlike
// a service's (envflag): names such as REASON, JSON or LIMIT are common
// in a shell, and an exported REASON must not become what a player is
// told, nor a JSON=yes break every command.

// flagSet is a command's flags: the connection's, read from the
// environment too, and the command's own.
type flagSet struct {
	*flag.FlagSet
	conn map[string]bool // names of the connection flags
	// about is the help's first line: the command and what it does; args
	// its arguments, for the usage line.
	about, args string
}

func newFlagSet(name, args, about string, stdout io.Writer) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), conn: map[string]bool{}, about: about, args: args}
	fs.SetOutput(stdout)
	return fs
}

// addConn adds the flags register adds to fs as connection flags.
func (fs *flagSet) addConn(register func(*flag.FlagSet)) {
	conn := flag.NewFlagSet("", flag.ContinueOnError)
	register(conn)
	conn.VisitAll(func(f *flag.Flag) {
		fs.Var(f.Value, f.Name, f.Usage)
		fs.conn[f.Name] = true
	})
}

// parse parses args, then sets each connection flag they did not set from
// its environment variable. -h prints the help and returns flag.ErrHelp;
// an error is returned, not printed (the caller prints it once).
func (fs *flagSet) parse(args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.printUsage(out)
		return err
	case err != nil:
		return fmt.Errorf("%w (-h lists the flags)", err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name := range fs.conn {
		if v, ok := os.LookupEnv(envflag.EnvName(name)); ok && !set[name] {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("environment %s=%q: %w", envflag.EnvName(name), v, err)
			}
		}
	}
	return nil
}

// printUsage is a command's help: what it does, its flags, then the
// connection flags with their environment variables.
func (fs *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nusage: %s\n\nflags:\n", fs.about, strings.TrimSpace(fs.Name()+" [flags] "+fs.args))
	fs.VisitAll(func(f *flag.Flag) {
		if !fs.conn[f.Name] {
			printFlag(w, f, "")
		}
	})
	fmt.Fprintf(w, "\nconnection (as the services take them; each also read from its environment variable, the command line wins):\n")
	fs.VisitAll(func(f *flag.Flag) {
		if fs.conn[f.Name] {
			printFlag(w, f, envflag.EnvName(f.Name))
		}
	})
}

// printFlag prints one flag as envflag.PrintUsage does, its environment
// variable only if env is set.
func printFlag(w io.Writer, f *flag.Flag, env string) {
	typ, help := flag.UnquoteUsage(f)
	fmt.Fprintf(w, "\n  -%s", f.Name)
	if typ != "" {
		fmt.Fprintf(w, " %s", typ)
	}
	var notes []string
	if env != "" {
		notes = append(notes, env)
	}
	if f.DefValue != "" && f.DefValue != "false" {
		notes = append(notes, "default "+f.DefValue)
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "  (%s)", strings.Join(notes, ", "))
	}
	fmt.Fprintf(w, "\n    \t%s\n", strings.ReplaceAll(help, "\n", "\n    \t"))
}

// atLeastOne is a count flag: below 1 it is refused as it is parsed
// (-max-matches 0 would read nothing and say "capped").
type atLeastOne int

func (v *atLeastOne) String() string { return strconv.Itoa(int(*v)) }

func (v *atLeastOne) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a number")
	}
	if n < 1 {
		return errors.New("want 1 or more")
	}
	*v = atLeastOne(n)
	return nil
}

// positiveDuration is a deadline flag: 0 or less is refused as it is
// parsed (-timeout 0 would fail every read with "deadline exceeded").
type positiveDuration time.Duration

func (v *positiveDuration) String() string { return time.Duration(*v).String() }

func (v *positiveDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration")
	}
	if d <= 0 {
		return errors.New("want more than 0")
	}
	*v = positiveDuration(d)
	return nil
}
