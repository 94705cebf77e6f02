package perf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/quickmatch-dev/quickmatch/dev/stack"
)

// Config of a perf run.
type Config struct {
	// BinDir holds the service binaries (make build) and the load tool.
	BinDir string
	// Rate of arrivals, tickets per second, for Duration, each leg.
	Rate     float64
	Duration time.Duration
	// Timeout is how long one ticket may wait for its assignment.
	Timeout time.Duration
	// Skills ("lo-hi") and Regions (comma-separated) of the tickets.
	Skills, Regions string
	// Players is the load tool's -players: 0, a new player for every
	// ticket; N, N players who ask again once their ticket has its
	// outcome (a returning player's creation replaces a live ticket).
	Players int
	// Burst is the load tool's -burst: tickets arrive this many at one
	// instant, at the same mean rate (0 or 1: one at a time), to measure
	// what a stage that gathers arrivals could save.
	Burst int
	// Vias are the legs, in order: http, ws, nats.
	Vias []string
	// HTTP1: the http leg speaks HTTP/1.1 (the load tool's -h2c=false:
	// a connection per request in flight, its event streams each
	// holding one), as clients behind a proxy that does not speak h2c.
	HTTP1 bool
	// Keyed sends every POST of the http leg an Idempotency-Key, as every
	// browser does: the frontend's keyed creation path.
	Keyed bool
	// Retries, with Keyed, sends a POST of the http leg that failed
	// (refused for now, or unanswered) again with its key up to this
	// many times, as the TypeScript client does (8): the load tool's
	// -retries. What a refusal at overload brings back.
	Retries int
	// Connections is how many HTTP/2 connections the http leg's load
	// tool spreads its requests over (its -source-ips; 0 or 1: one), as
	// a load balancer or many players' own connections would; the ws
	// leg's sockets come from as many addresses.
	Connections int
	// ServiceEnv adds settings to every service (after LOG_LEVEL=warn).
	ServiceEnv []string
	// ServiceProcs is GOMAXPROCS of each service (0: the stack's default).
	ServiceProcs int
	// Idle is how long each process's CPU is measured on the stack at
	// rest, before the load (0: not measured): the share of the charged period's
	// CPU that is heartbeats and sweeps, which weighs most at low rates.
	Idle time.Duration
	// Progress is how often the load tool prints a progress line to
	// Stderr (0: never).
	Progress time.Duration
	// ProbeRate, when set, runs a second load tool beside the load, at
	// this rate, over the same transport, from its own process and
	// connection: a player's view of the system the load is driving,
	// which the load tool's own figures are not at high rates (its
	// thousands of streams share its connections, its process and the
	// machine's cores, and wait for them: the thirtieth round). 0: none.
	ProbeRate float64
	// Interval splits each leg's tickets by arrival time (the load
	// tool's -interval; 0: not split): whether slow answers are spread
	// over the run or gathered in some seconds of it.
	Interval time.Duration
	// PprofBasePort, when set, serves Go's profiles during each leg: the
	// embedded NATS server's on this port, each service's on the next
	// ones (the ports are printed to Logs). 0 is off. Profiles are taken
	// by hand (go tool pprof URL), so that what they cost is chosen.
	PprofBasePort int
	// RSSEvery, when set, samples each process's resident memory this
	// often through the window (Leg.RSSSeries): whether memory stays
	// flat over a long run, which the end and peak figures cannot tell.
	RSSEvery time.Duration
	// Logs receives every service's output (nil: discarded); Stderr the
	// load tool's progress and what perf says as it goes.
	Logs, Stderr io.Writer
}

// Validate reports every error of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Rate <= 0 || c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("rate %g/s for %s: want both above zero", c.Rate, c.Duration))
	}
	// The load tool sends ticket i to region i mod len(regions). An odd
	// count in a region leaves a ticket without a partner, which waits
	// out the mode's max wait: the window would end with seconds of idle.
	n, regions := int64(c.Rate*c.Duration.Seconds()), int64(len(strings.Split(c.Regions, ",")))
	if n%(2*regions) != 0 {
		errs = append(errs, fmt.Errorf("rate × duration = %d tickets: want a multiple of %d (an even count in each of %d regions), or one ticket waits for a partner until it expires", n, 2*regions, regions))
	}
	if p := int64(c.ProbeRate * c.Duration.Seconds()); c.ProbeRate < 0 || p%(2*regions) != 0 {
		errs = append(errs, fmt.Errorf("probe rate %g/s × duration = %d tickets: want 0 or more, and a multiple of %d", c.ProbeRate, p, 2*regions))
	}
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("interval %s: want 0 or more", c.Interval))
	}
	if c.Burst < 0 {
		errs = append(errs, fmt.Errorf("burst %d: want 0 or more", c.Burst))
	}
	if c.Players < 0 {
		errs = append(errs, fmt.Errorf("players %d: want 0 or more", c.Players))
	}
	for _, via := range c.Vias {
		if via != "http" && via != "ws" && via != "nats" {
			errs = append(errs, fmt.Errorf("via %q: want http, ws or nats", via))
		}
	}
	for _, b := range []string{"frontend", "matcher", "allocator", "game", "load"} {
		if _, err := os.Stat(filepath.Join(c.BinDir, b)); err != nil {
			errs = append(errs, fmt.Errorf("binary %s missing in %s (make build; go build -o bin/load ./load): %w", b, c.BinDir, err))
		}
	}
	return errors.Join(errs...)
}

// Run runs one leg per transport of cfg.Vias, each on a fresh stack, and
// returns what each cost. A failed leg ends the run; the legs before it
// are in the report.
func Run(ctx context.Context, cfg Config) (Report, error) {
	rep := Report{Started: time.Now().UTC(), Rate: cfg.Rate, Duration: cfg.Duration.Seconds(), Skills: cfg.Skills,
		Regions: cfg.Regions, Players: cfg.Players, BinDir: cfg.BinDir, NATS: fmt.Sprintf("embedded in perf's own process (pid %d)", os.Getpid())}
	if cfg.Burst > 1 {
		rep.Burst = cfg.Burst // 0 or 1 is one at a time: reported as none
	}
	rep.HTTP1 = cfg.HTTP1 && slices.Contains(cfg.Vias, "http")
	if err := cfg.Validate(); err != nil {
		return rep, err
	}
	if cfg.Logs == nil {
		cfg.Logs = io.Discard
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	for _, via := range cfg.Vias {
		leg, err := runLeg(ctx, cfg, via)
		if err != nil {
			return rep, fmt.Errorf("leg %s: %w", via, err)
		}
		rep.Legs = append(rep.Legs, leg)
	}
	return rep, nil
}

// runLeg starts a stack, measures one load run over via, and stops it.
func runLeg(ctx context.Context, cfg Config, via string) (leg Leg, err error) {
	dir, err := os.MkdirTemp("", "quickmatch-perf")
	if err != nil {
		return leg, err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(cfg.Stderr, "perf: %s: starting a fresh stack\n", via)
	s, err := stack.Start(ctx, stack.Config{
		BinDir: cfg.BinDir, DataDir: dir, NATSPort: -1, Host: "127.0.0.1",
		GamePorts: []int{0, 0}, MatcherOpsPorts: []int{0, 0}, GameMaxRooms: 100000,
		Env: append([]string{"LOG_LEVEL=warn"}, cfg.ServiceEnv...), ServiceProcs: cfg.ServiceProcs, Logs: cfg.Logs,
		PprofBasePort: cfg.PprofBasePort,
	})
	if err != nil {
		return leg, err
	}
	defer func() {
		if stopErr := s.Stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("stop the stack: %w", stopErr)
		}
		if err != nil { // a service that died says why in its last lines
			out := s.Output()
			err = fmt.Errorf("%w\nthe stack's last output:\n%s", err, out[max(0, len(out)-4000):])
		}
	}()
	pids := systemPids(s.Pids())
	// The earlier leg's heap back to the OS, and the peak from here on:
	// this process is the embedded NATS server.
	debug.FreeOSMemory()
	if err := ResetPeak(os.Getpid()); err != nil {
		return leg, fmt.Errorf("reset this process's peak memory: %w", err)
	}
	rest, err := sampleAll(pids)
	if err != nil {
		return leg, err
	}
	if err := sleep(ctx, cfg.Idle); err != nil {
		return leg, err
	}
	start, err := readNow(pids)
	if err != nil {
		return leg, err
	}
	countStart, err := s.NATSCounts()
	if err != nil {
		return leg, err
	}
	t0 := time.Now()
	during := readEvery(ctx, pids, readingEvery(cfg.RSSEvery))
	probed := runProbe(ctx, cfg, s, via)
	out, loadTool, err := runLoad(ctx, cfg, s, via)
	probe, probeErr := probed()
	err = errors.Join(err, probeErr)
	window := time.Since(t0) // the probe's tickets are inside it too, as their CPU is
	readings := during()
	rssSeries := rssSeries(readings, pids, t0, cfg.RSSEvery)
	end, sampleErr := readNow(pids)
	countEnd, countErr := s.NATSCounts()
	if err = errors.Join(err, sampleErr, countErr); err != nil {
		return leg, err
	}
	sum, err := ParseLoadSummary(out)
	if err != nil {
		return leg, err
	}
	readings = append(append([]reading{start}, readings...), end)
	from, to := loadPeriod(sum, probe)
	first, last, whole := chargedPeriod(readings, from, to)
	leg = newLeg(via, window, sum, probe, pids, first.samples, last.samples, loadTool)
	leg.ChargedSeconds, leg.ChargedWholeWindow = last.done.Sub(first.begun).Seconds(), whole
	leg.Messages = NewMessages(countStart, countEnd, leg.charged())
	leg.RSSSeries = rssSeries
	setIdle(&leg, cfg.Idle, rest, start.samples)
	return leg, nil
}

// rssSeries is the resident memory of ps in readings, taken every
// interval from t0, one reading each (none when every is 0).
func rssSeries(readings []reading, ps []named, t0 time.Time, every time.Duration) []RSSPoint {
	if every <= 0 {
		return nil
	}
	var points []RSSPoint
	next := t0.Add(every)
	for _, r := range readings {
		if r.begun.Before(next) {
			continue
		}
		for !r.begun.Before(next) {
			next = next.Add(every)
		}
		p := RSSPoint{Seconds: r.begun.Sub(t0).Seconds(), RSS: map[string]int64{}}
		for i, n := range ps {
			p.RSS[n.name] = r.samples[i].RSS
		}
		points = append(points, p)
	}
	return points
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// setIdle sets each process's idle CPU from the samples taken idle apart
// before the load, and their sum in the total.
func setIdle(leg *Leg, idle time.Duration, rest, start []Sample) {
	if idle <= 0 {
		return
	}
	leg.IdleSeconds = idle.Seconds()
	leg.Total.IdleCores = 0
	for i := range leg.Processes {
		leg.Processes[i].IdleCores = (start[i].CPU - rest[i].CPU).Seconds() / idle.Seconds()
		leg.Total.IdleCores += leg.Processes[i].IdleCores
	}
}

// named is a process of the system in the order a report lists it.
type named struct {
	name string
	pid  int
}

// systemPids lists the embedded NATS server (this process) first, then
// the services along a ticket's path.
func systemPids(services map[string]int) []named {
	rank := func(name string) int {
		for i, p := range []string{"frontend", "matcher", "allocator", "game"} {
			if strings.HasPrefix(name, p) {
				return i
			}
		}
		return 4
	}
	names := slices.SortedFunc(maps.Keys(services), func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	out := []named{{"nats (embedded)", os.Getpid()}}
	for _, n := range names {
		out = append(out, named{n, services[n]})
	}
	return out
}

func sampleAll(ps []named) ([]Sample, error) {
	out := make([]Sample, len(ps))
	for i, p := range ps {
		var err error
		if out[i], err = ReadSample(p.pid); err != nil {
			return nil, fmt.Errorf("%s (pid %d): %w", p.name, p.pid, err)
		}
	}
	return out, nil
}

// newLeg puts a leg's figures together; probe is nil without one.
func newLeg(via string, window time.Duration, sum LoadSummary, probe *LoadSummary, ps []named, start, end []Sample, loadTool Usage) Leg {
	leg := Leg{Via: via, WindowSeconds: window.Seconds(), Load: sum, Probe: probe, Acknowledged: sum.Acknowledged(), LoadTool: loadTool}
	if sum.Seconds > 0 {
		leg.AckPerSecond = float64(leg.Acknowledged) / sum.Seconds
		leg.AssignedPerSecond = float64(sum.Assigned) / sum.Seconds
	}
	n := leg.charged()
	for i, p := range ps {
		leg.Processes = append(leg.Processes, NewUsage(p.name, p.pid, start[i], end[i], n))
	}
	leg.Total = Sum("total", leg.Processes, n)
	leg.LoadTool.setCPU(loadTool.cpu, sum.Assigned)
	leg.LoadTool.setWakes(loadTool.Wakes, sum.Assigned)
	return leg
}

// charged is how many assigned tickets the system's work in the window is
// divided by: the load's and the probe's, which the system did as well.
func (l Leg) charged() int64 {
	if l.Probe != nil {
		return l.Load.Assigned + l.Probe.Assigned
	}
	return l.Load.Assigned
}
