package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
)

// Main is every service's main: "probe URL" answers the container
// healthcheck; otherwise run gets the command line and a context that ends
// on SIGINT or SIGTERM, and the process exits as ExitCode says.
func Main(name string, run func(ctx context.Context, args []string) error) {
	ops.MaybeProbe(os.Args[1:])
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := stopped(ctx, run(ctx, os.Args[1:]))
	stop()
	if code := ExitCode(os.Stderr, name, err); code != 0 {
		os.Exit(code)
	}
}

// stopped is err, or nil when err only says that ctx ended: the process
// was asked to stop while it waited (for NATS, the topology, its
// buckets: Connect, Retry), which is no failure.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// ExitCode is the exit status of a command whose run returned err: 0 for
// none, and for flag.ErrHelp, since -h printed what was asked for (see
// envflag.NewFlagSet); otherwise 1, with err written to w prefixed with
// the command's name. Commands with a main of their own (the load tool,
// localstack) use it too, so that every binary answers -h alike.
func ExitCode(w io.Writer, name string, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(w, name+":", err)
	return 1
}
