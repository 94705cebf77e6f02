// Command natscost measures what a message costs a NATS server: the CPU
// seconds a nats-server process spends per message (from /proc), by kind
// of message and by how they arrive (rate, and how many come together).
//
// It tells the two costs of a message apart: its own work (parsing,
// storing, answering), and the server's waking up for it, which a
// message arriving alone pays in full and one arriving with others
// shares. BENCHMARKS.md, "The lean path (issue #20)", has the method and
// the figures.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/dev/perf"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
)

// about says what natscost is: the first line of its -h and of its
// package comment (TestHelp checks that they agree).
const about = "natscost measures what a message costs a NATS server: the CPU seconds a nats-server process spends per message (from /proc), by kind of message and by how they arrive (rate, and how many come together)."

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	os.Exit(service.ExitCode(os.Stderr, "natscost", err))
}

// config is natscost's settings.
type config struct {
	server   string
	kinds    []string
	rates    []float64
	bursts   []int
	duration time.Duration
	idle     time.Duration
	size     int
}

func run(ctx context.Context, args []string) error {
	var cfg config
	var kinds, rates, bursts string
	fs := envflag.NewFlagSet("natscost", about)
	fs.StringVar(&cfg.server, "nats-server", "bin/nats-server", "the nats-server binary to measure (make tools); it runs as a process of its own, JetStream on, in a new directory")
	fs.StringVar(&kinds, "kinds", strings.Join(kindNames(), ","), "the kinds of message, in order: "+kindHelp())
	fs.StringVar(&rates, "rates", "250,1000,4000,0", "messages per second, each a run of its own (0: as fast as the server answers, up to 256 in flight)")
	fs.StringVar(&bursts, "bursts", "1,10", "how many messages arrive together (sent at once, every burst/rate seconds), each a run of its own; the rate stays the same")
	fs.DurationVar(&cfg.duration, "duration", 8*time.Second, "how long each run sends")
	fs.DurationVar(&cfg.idle, "idle", 5*time.Second, "measure the server at rest this long first: its idle CPU over each run's window is taken off")
	fs.IntVar(&cfg.size, "size", 256, "bytes of each message's payload (a ticket is about 300, a match record about 250)")
	if err := envflag.Parse(fs, args); err != nil {
		return err
	}
	var err error
	if cfg.kinds, err = pickKinds(kinds); err != nil {
		return err
	}
	if cfg.rates, err = numbers(rates, strconv.ParseFloat); err != nil {
		return fmt.Errorf("-rates: %w", err)
	}
	if cfg.bursts, err = numbers(bursts, func(s string, _ int) (int, error) { return strconv.Atoi(s) }); err != nil {
		return fmt.Errorf("-bursts: %w", err)
	}
	if err := cfg.check(); err != nil {
		return err
	}
	return measure(ctx, cfg)
}

// check refuses settings that would never end a run (a burst of none) or
// divide by nothing (no time to measure in).
func (c config) check() error {
	switch {
	case slices.Contains(c.bursts, 0):
		return errors.New("-bursts: each must be at least 1")
	case c.duration <= 0 || c.idle <= 0:
		return errors.New("-duration and -idle must be above 0")
	}
	return nil
}

// numbers parses a comma-separated list with parse.
func numbers[T int | float64](s string, parse func(string, int) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		v, err := parse(strings.TrimSpace(f), 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%q is not a number of at least 0", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// measure starts the server, measures it at rest, then runs every kind at
// every rate and burst, and prints a line per run.
func measure(ctx context.Context, cfg config) error {
	dir, err := os.MkdirTemp("", "natscost")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, url, err := start(ctx, cfg.server, dir)
	if err != nil {
		return err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	pid := srv.Process.Pid
	// A server just started is still busy starting (JetStream's own
	// streams and timers): at rest it is measured once it has settled,
	// or its start would be taken off every run (review R12).
	if err := sleep(ctx, settle); err != nil {
		return err
	}
	idle, err := over(pid, func() error { return sleep(ctx, cfg.idle) })
	if err != nil {
		return err
	}
	idleCPU := time.Duration(float64(idle.CPU) / cfg.idle.Seconds())
	idleWakes := float64(idle.Wakes) / cfg.idle.Seconds()
	fmt.Printf("nats-server at rest: %v CPU and %.0f wakes a second (taken off each run below)\n", idleCPU, idleWakes)
	const row = "%-15s %7s %6s %9s %8s %14s %17s %14s\n"
	fmt.Printf(row, "kind", "rate/s", "burst", "messages", "sent/s", "server µs/msg", "server wakes/msg", "client µs/msg")
	for _, name := range cfg.kinds {
		for _, rate := range cfg.rates {
			for _, burst := range cfg.bursts {
				if rate == 0 && burst != cfg.bursts[0] {
					continue // flat out: the burst is the in-flight window
				}
				r, err := runOne(ctx, url, pid, cfg, name, rate, burst)
				if err != nil {
					return fmt.Errorf("%s at %v/s, bursts of %d: %w", name, rate, burst, err)
				}
				server := r.server.CPU - time.Duration(float64(idleCPU)*r.wall.Seconds())
				wakes := float64(r.server.Wakes) - idleWakes*r.wall.Seconds()
				fmt.Printf(row, name, rateText(rate), strconv.Itoa(burst), strconv.Itoa(r.n),
					fmt.Sprintf("%.0f", float64(r.n)/r.wall.Seconds()),
					fmt.Sprintf("%.1f", perMsg(server, r.n)), fmt.Sprintf("%.2f", wakes/float64(r.n)),
					fmt.Sprintf("%.1f", perMsg(r.client, r.n)))
			}
		}
	}
	return nil
}

func rateText(rate float64) string {
	if rate == 0 {
		return "max"
	}
	return strconv.FormatFloat(rate, 'f', -1, 64)
}

func perMsg(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(n) }

// settle is how long a server just started is left before it is
// measured at rest.
const settle = 3 * time.Second

// result is one run's count, time and CPU: the server's (and its
// wakes), this process's.
type result struct {
	n            int
	wall, client time.Duration
	server       perf.Sample
}

// runOne sends kind name at rate in bursts over a connection of its own
// and measures the server's CPU and this process's while it does.
func runOne(ctx context.Context, url string, pid int, cfg config, name string, rate float64, burst int) (result, error) {
	nc, err := nats.Connect(url, nats.Name("natscost"))
	if err != nil {
		return result{}, err
	}
	defer nc.Close()
	sctx, cancel := context.WithTimeout(ctx, answerWait)
	defer cancel()
	k, err := newKind(sctx, name, nc, cfg.size)
	if err != nil {
		return result{}, err
	}
	defer k.close()
	var r result
	self0, err := perf.ReadSample(os.Getpid())
	if err != nil {
		return result{}, err
	}
	start := time.Now()
	r.server, err = over(pid, func() error {
		var err error
		if rate == 0 {
			r.n, err = flatOut(ctx, k, cfg.duration)
		} else {
			r.n, err = paced(ctx, k, rate, burst, cfg.duration)
		}
		return err
	})
	r.wall = time.Since(start)
	if err != nil {
		return result{}, err
	}
	self1, err := perf.ReadSample(os.Getpid())
	if err != nil {
		return result{}, err
	}
	r.client = self1.CPU - self0.CPU
	return r, nil
}

// over is what pid spent while f ran: its CPU time and its wakes.
func over(pid int, f func() error) (perf.Sample, error) {
	a, err := perf.ReadSample(pid)
	if err != nil {
		return perf.Sample{}, err
	}
	if err := f(); err != nil {
		return perf.Sample{}, err
	}
	b, err := perf.ReadSample(pid)
	if err != nil {
		return perf.Sample{}, err
	}
	return perf.Sample{CPU: b.CPU - a.CPU, Wakes: perf.WakesBetween(a, b)}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// start runs the nats-server binary with JetStream in dir on a free port,
// and returns once it answers.
func start(ctx context.Context, bin, dir string) (*exec.Cmd, string, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, "", err
	}
	port := 0
	if port, err = freePort(); err != nil {
		return nil, "", err
	}
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	cmd := exec.CommandContext(ctx, bin, "-js", "-sd", filepath.Join(dir, "js"), "-a", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", bin, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		nc, err := nats.Connect(url)
		if err == nil {
			nc.Close()
			return cmd, url, nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, "", fmt.Errorf("%s did not answer on %s: %w", bin, url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
