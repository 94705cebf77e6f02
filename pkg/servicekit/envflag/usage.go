package envflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// NewFlagSet is the flag set of a command whose flags Parse reads: -h,
// -help and --help print about (one line: what the program is), a usage
// line and every flag with its environment variable, type and default, to
// standard output, since the text was asked for. Parse returns
// flag.ErrHelp then, which service.ExitCode turns into status 0.
func NewFlagSet(name, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stdout)
	fs.Usage = func() { PrintUsage(fs.Output(), fs, about) }
	return fs
}

// PrintUsage writes the help of fs, about first. Defaults that say
// nothing (an empty string, false) are left out, as the flag package
// does; a zero number is shown, since "0" often means "off" here.
func PrintUsage(w io.Writer, fs *flag.FlagSet, about string) {
	fmt.Fprintf(w, "%s\n\nusage: %s [flags]\n\n", about, fs.Name())
	fmt.Fprintln(w, "Every flag may also be set by its environment variable; the command line wins.")
	fs.VisitAll(func(f *flag.Flag) {
		typ, help := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "\n  -%s", f.Name)
		if typ != "" {
			fmt.Fprintf(w, " %s", typ)
		}
		fmt.Fprintf(w, "  (%s", EnvName(f.Name))
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(w, ", default %s", f.DefValue)
		}
		fmt.Fprintf(w, ")\n    \t%s\n", strings.ReplaceAll(help, "\n", "\n    \t"))
	})
}

// parseArgs is fs.Parse with the flag package's own printing silenced:
// it prints an error and the whole usage to the output, but an error is
// returned to the caller, who prints it once, and the usage is printed
// here only when asked for.
func parseArgs(fs *flag.FlagSet, args []string) error {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return err
	default:
		return fmt.Errorf("%w (-h lists the flags)", err)
	}
}
