// Command load drives a quickmatch deployment with headless clients and
// reports what it saw. It runs against `make run` or any deployment.
//
//	load hold -clients 20000 -kind sse -proto h2c   hold waiting clients open
//	load rooms -rooms 5000 -join-key-file KEY.pem   fill a game server with rooms
//	load run -rate 2000 -duration 60s               open-arrival tickets to assignment
//
// See BENCHMARKS.md for the method and the figures.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: load hold|rooms|run [flags]  (load hold -h for the flags)")
	}
	switch args[0] {
	case "hold":
		return hold(ctx, args[1:], os.Stdout)
	case "rooms":
		return rooms(ctx, args[1:], os.Stdout)
	case "run":
		return runLoad(ctx, args[1:], os.Stdout)
	default:
		return fmt.Errorf("unknown command %q: want hold, rooms or run", args[0])
	}
}

// runID tells one run's players and rooms from another's.
func runID() string { return fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff) }

// printJSON is the -json form of every command's result.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
