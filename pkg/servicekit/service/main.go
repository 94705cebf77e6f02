package service

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
)

// Main is every service's main: "probe URL" answers the container
// healthcheck; otherwise run gets the command line and a context that ends
// on SIGINT or SIGTERM, and an error it returns is printed, prefixed with
// the service's name, and exits 1.
func Main(name string, run func(ctx context.Context, args []string) error) {
	ops.MaybeProbe(os.Args[1:])
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
