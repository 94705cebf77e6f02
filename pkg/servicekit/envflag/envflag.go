// Package envflag lets every flag be given as an environment variable too:
// flag "nats-url" is read from NATS_URL when it is not on the command line.
// The command line wins over the environment, which wins over the default.
package envflag

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// EnvName is the environment variable of a flag: upper snake case.
func EnvName(flagName string) string {
	return strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs, then sets every flag that args did not set
// from its environment variable, if that is set. -h, -help and --help
// print fs.Usage (see NewFlagSet) and return flag.ErrHelp.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("environment %s=%q: %w", EnvName(f.Name), v, e)
			}
		}
	})
	return err
}

// OrDefault sets *v to d unless *v is positive: the one rule every
// service's Config uses for a number its caller left unset (zero, or
// nonsense below it). A string is unset when empty: use cmp.Or.
func OrDefault[T ~int | ~int32 | ~int64](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}
