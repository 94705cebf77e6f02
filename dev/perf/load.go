package perf

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/quickmatch-dev/quickmatch/dev/stack"
)

// LoadSummary is the part of `load run -json`'s result a leg reports.
type LoadSummary struct {
	Rate    float64 `json:"rate_per_second"`
	Seconds float64 `json:"seconds"` // how long the arrivals took
	Sent    int64   `json:"tickets_sent"`
	// Assigned tickets, of Sent.
	Assigned int64 `json:"assigned"`
	// Errors by kind: post_503, publish_..., timeout, expired, ...
	Errors map[string]int64 `json:"errors_by_kind"`
	// Latency is from a ticket's POST (or publish) to its assignment,
	// Accepted from its POST to the 202 (or to JetStream's ack), in
	// milliseconds: p50, p90, p99, p99.9, max.
	Latency  map[string]float64 `json:"latency_ms"`
	Accepted map[string]float64 `json:"accepted_ms"`
	// Refused POSTs (503: overload control, a full region, a drain, a
	// frontend still starting; also in Errors as post_503) and how long
	// each took from the POST to its 503, in milliseconds (absent when
	// none): the excess beyond capacity is to be refused at once (#20's
	// target: within 50 ms).
	Refused        int64              `json:"refused"`
	RefusedLatency map[string]float64 `json:"refused_ms,omitempty"`
	// Resent is the POSTs sent again (Config.Retries): what refusals
	// brought back on top of the arrivals.
	Resent int64 `json:"resent,omitempty"`
	// Windows are the tickets by arrival time (Config.Interval), each
	// window's figures as the whole run's.
	Windows []LoadWindow `json:"windows,omitempty"`
	// FirstSentAt is when the first ticket was sent, LastAssignedAt when
	// the last one was assigned (zero: none, or a load tool that does not
	// say): the period the system's CPU is charged for (chargedPeriod).
	FirstSentAt    time.Time `json:"first_sent_at"`
	LastAssignedAt time.Time `json:"last_assigned_at,omitzero"`
}

// LoadWindow is the tickets that arrived in one interval of a leg.
type LoadWindow struct {
	FromSeconds    float64            `json:"from_seconds"`
	Sent           int64              `json:"tickets_sent"`
	Assigned       int64              `json:"assigned"`
	Latency        map[string]float64 `json:"latency_ms"`
	Refused        int64              `json:"refused,omitempty"`
	RefusedLatency map[string]float64 `json:"refused_ms,omitempty"`
}

// ParseLoadSummary decodes the output of `load run -json`.
func ParseLoadSummary(out []byte) (LoadSummary, error) {
	var s LoadSummary
	if err := json.Unmarshal(out, &s); err != nil {
		return s, fmt.Errorf("load run -json: %w", err)
	}
	if s.Sent <= 0 || s.Latency == nil {
		return s, fmt.Errorf("load run -json: no tickets_sent or latency_ms in %.200q", out)
	}
	return s, nil
}

// refusedBefore are the prefixes of the load tool's error kinds for a
// ticket that was never acknowledged: its token could not be made, its
// POST failed or was refused (post_error, post_503, ...), or its publish
// was not stored. Every other kind (timeout, expired, events_404,
// events_bad, events_error, ...) happened to a ticket the system had
// acknowledged.
var refusedBefore = []string{"token_", "post_", "publish_"}

// Acknowledged is how many tickets the system acknowledged: the frontend
// answered 202, or JetStream stored the published ticket.
func (s LoadSummary) Acknowledged() int64 {
	n := s.Sent
	for kind, count := range s.Errors {
		for _, p := range refusedBefore {
			if strings.HasPrefix(kind, p) {
				n -= count
				break
			}
		}
	}
	return n
}

// loadTarget is where a leg's load tool sends its tickets: a stack.
type loadTarget interface {
	FrontendURL() string
	DevIssuerKeyFile() string
	NATSURL() string
	NATSPassword(user string) string
}

// loadArgs is the command line and the environment of a leg's `load run`
// over via against s.
func loadArgs(cfg Config, s loadTarget, via string) (args, env []string) {
	args = []string{"run", "-via", via, "-rate", fmt.Sprint(cfg.Rate), "-duration", cfg.Duration.String(),
		"-timeout", cfg.Timeout.String(), "-skills", cfg.Skills, "-regions", cfg.Regions,
		"-progress", cfg.Progress.String(), "-json"}
	if cfg.Players > 0 {
		args = append(args, "-players", fmt.Sprint(cfg.Players))
	}
	if cfg.Burst > 1 {
		args = append(args, "-burst", fmt.Sprint(cfg.Burst))
	}
	if cfg.Interval > 0 {
		args = append(args, "-interval", cfg.Interval.String())
	}
	// Only these settings: a stray one of the caller's shell (NATS_URL,
	// RATE) would be a flag the command line did not give.
	env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if via == "nats" {
		// The password in the environment, not on a command line ps shows.
		args = append(args, "-nats-url", s.NATSURL(), "-nats-user", "operator")
		return args, append(env, "NATS_PASSWORD="+s.NATSPassword("operator"))
	}
	args = append(args, "-url", s.FrontendURL(), "-token-key", s.DevIssuerKeyFile())
	if cfg.HTTP1 && via == "http" { // a WebSocket's upgrade is HTTP/1.1 anyway
		args = append(args, "-h2c=false")
	}
	if cfg.Keyed && via == "http" { // a WebSocket's ticket has no key
		args = append(args, "-idempotency-keys")
		if cfg.Retries > 0 {
			args = append(args, "-retries", fmt.Sprint(cfg.Retries))
		}
	}
	if cfg.Connections > 1 {
		args = append(args, "-source-ips", fmt.Sprint(cfg.Connections))
	}
	return args, env
}

// runLoad runs `load run` over via against s and returns its JSON summary
// and what it used itself (its rusage, once it exited).
func runLoad(ctx context.Context, cfg Config, s *stack.Stack, via string) ([]byte, Usage, error) {
	args, env := loadArgs(cfg, s, via)
	cmd := exec.CommandContext(ctx, filepath.Join(cfg.BinDir, "load"), args...)
	var stdout bytes.Buffer
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &stdout, cfg.Stderr
	fmt.Fprintf(cfg.Stderr, "perf: %s: load %s\n", via, strings.Join(args, " "))
	err := cmd.Run()
	if err != nil {
		return nil, Usage{}, fmt.Errorf("load run: %w", err)
	}
	u := Usage{Name: "load tool (not in total)", Pid: cmd.Process.Pid}
	u.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	u.CPUSeconds = u.cpu.Seconds()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.Peak = ru.Maxrss * 1024  // KiB on Linux
		u.Wakes = uint64(ru.Nvcsw) // voluntary context switches, every thread's
	}
	return stdout.Bytes(), u, nil
}

// runProbe starts the leg's probe (Config.ProbeRate), a load tool of its
// own at that rate, and returns a function that waits for it and returns
// its summary (nil without a probe).
func runProbe(ctx context.Context, cfg Config, s *stack.Stack, via string) func() (*LoadSummary, error) {
	if cfg.ProbeRate <= 0 {
		return func() (*LoadSummary, error) { return nil, nil }
	}
	pc := cfg
	pc.Rate, pc.Burst, pc.Players, pc.Connections, pc.Progress = cfg.ProbeRate, 0, 0, 1, 0
	type result struct {
		sum *LoadSummary
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, _, err := runLoad(ctx, pc, s, via)
		if err != nil {
			done <- result{err: fmt.Errorf("probe: %w", err)}
			return
		}
		sum, err := ParseLoadSummary(out)
		done <- result{&sum, err}
	}()
	return func() (*LoadSummary, error) {
		r := <-done
		return r.sum, r.err
	}
}
