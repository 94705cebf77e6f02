// Package chaos runs quickmatch as separate processes on a 3-node NATS
// JetStream cluster, drives it with the load tool, kills, restarts and
// pauses processes and cuts connections (partition.go) meanwhile, and
// hands the history to an independent checker (Check). cmd/chaos is the long run; the package test is the
// short one in make test.
package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/loadrecord"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
)

// Config is one chaos run.
type Config struct {
	// BinDir holds frontend, matcher, allocator, game and load.
	BinDir string
	// NATSServer is the nats-server binary (make tools builds bin/nats-server).
	NATSServer string
	// Dir keeps the NATS stores, the load tool's record and the logs.
	Dir string
	// Rate is tickets per second for Duration.
	Rate     float64
	Duration time.Duration
	// FaultEvery is the pause between two faults.
	FaultEvery time.Duration
	// MaxWait is the 1v1 mode's max wait: a ticket nobody matches expires
	// after it. A ticket's deadline is MaxWait, plus one takeover of its
	// match by another allocator (events.AllocatorReservationStale: the
	// match of an allocator killed while it allocated it waits that
	// long), plus Slack.
	MaxWait, Slack time.Duration
	// Partitions makes a share of the faults (PartitionShare, 0: half)
	// cuts (partition.go), the four kinds in turn: a NATS node from the
	// other two, a service from NATS both ways, one way, and one route of
	// the three (A reaches B and B reaches C, not A C). Each lasts
	// between MaxCut/4 and MaxCut (0: 8 s).
	Partitions     bool
	PartitionShare float64
	MaxCut         time.Duration
	// Keyed makes the load's players browsers: each POST carries an
	// Idempotency-Key, and one that failed (no answer, or a refusal that
	// asking again may mend) is sent again with it, up to eight times,
	// each time to the next frontend (the load tool's -retries), as the
	// TypeScript client does behind a load balancer. Off, the load takes
	// the unkeyed creation path and never asks again.
	Keyed bool
	// Seed makes the choice of faults repeatable.
	Seed uint64
	// Logs receives every process's output, each line prefixed.
	Logs io.Writer
}

// Report is what a run did and what the checker found.
type Report struct {
	Verdict
	Rate        float64        `json:"rate_per_second"`
	Keyed       bool           `json:"keyed,omitempty"` // Config.Keyed
	LoadSeconds float64        `json:"load_seconds"`
	Faults      map[string]int `json:"faults"`
	FaultCount  int            `json:"faults_injected"`
	FaultLog    []string       `json:"fault_log"`
	// Crashes are exits nobody caused (the harness restarts them, as
	// Kubernetes would); start-up exits while a broker node is away count.
	Crashes map[string]int `json:"unprovoked_exits"`
	// Load is the load tool's own summary (its client-side view).
	Load json.RawMessage `json:"load"`
	// Reused counts the acknowledged tickets of players who asked twice
	// (reuser); ReuseErrors the ones refused or lost on the way, by path.
	Reused      int            `json:"reused_player_tickets"`
	ReuseErrors map[string]int `json:"reuse_errors,omitempty"`
	// Takeovers are the shards of matchers on the cut side of each cut.
	Takeovers []Takeover `json:"takeovers,omitempty"`
	// TakeoverStats sum them up by kind of cut, against the stated bounds.
	TakeoverStats []TakeoverStat `json:"takeover_stats,omitempty"`
	// Timeliness counts the tickets that ended late or needlessly.
	Timeliness Timely `json:"timeliness"`
	// Lost are the acknowledged tickets without an outcome, with what the
	// claims bucket says of them.
	Lost []Lost `json:"lost,omitempty"`
	// NoShowPosts trace each no-show to its player's failed POST: one
	// its frontend answered an error for (post_503) is a fault of the
	// frontend's; one answered nothing (post_error) a creation cut short
	// (noshow.go).
	NoShowPosts []NoShowPost `json:"no_show_posts,omitempty"`
}

type system struct {
	cfg    Config
	nats   []*member
	others []*member // game servers, matchers, allocators, frontends
	urls   string    // the nodes' client URLs, for the harness only
	// net is the links in front of every route and service connection;
	// clientPorts the nodes' client ports behind them.
	net         *network
	clientPorts []int
	partitions  []partition // the cuts made, in order
}

// Run runs the system under load and faults, then checks the history.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Logs == nil {
		cfg.Logs = io.Discard
	}
	if cfg.Slack == 0 {
		cfg.Slack = 30 * time.Second
	}
	if cfg.MaxCut <= 0 {
		cfg.MaxCut = 8 * time.Second
	}
	if cfg.PartitionShare <= 0 {
		cfg.PartitionShare = 0.5
	}
	s := &system{cfg: cfg}
	defer s.stop()
	if err := s.startNATS(ctx); err != nil {
		return nil, err
	}
	if err := s.startServices(ctx); err != nil {
		return nil, err
	}
	hist, err := watchResults(ctx, s.urls)
	if err != nil {
		return nil, err
	}
	defer hist.close()

	fronts := s.frontends()
	load, err := s.startLoad(ctx, fronts)
	if err != nil {
		return nil, err
	}
	rep := &Report{Rate: cfg.Rate, Keyed: cfg.Keyed, Faults: map[string]int{}}
	nc, js, err := connectJS(s.urls)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	leases, err := watchLeases(ctx, js)
	if err != nil {
		return nil, err
	}
	defer leases.close()
	reuse, err := s.prepareReuser(fronts, js)
	if err != nil {
		return nil, err
	}
	reuseCtx, stopReuse := context.WithCancel(ctx)
	defer stopReuse()
	var reusing sync.WaitGroup
	reusing.Go(func() { reuse.drive(reuseCtx, time.Second, time.Now().Add(cfg.Duration)) })
	s.inject(ctx, rep, time.Now().Add(cfg.Duration))
	reusing.Wait()
	if err := load.wait(rep); err != nil {
		return nil, err
	}

	acked, failed, err := loadrecord.Read(load.record)
	if err != nil {
		return nil, err
	}
	reused, reuseFailed, reuseErrs := reuse.result()
	acked = append(acked, reused...)
	failed = append(failed, reuseFailed...)
	rep.Reused, rep.ReuseErrors = len(reused), reuseErrs
	if err := s.check(ctx, rep, acked, failed, hist, js); err != nil {
		return nil, err
	}
	rep.Crashes = s.crashes()
	rep.Takeovers = takeovers(s.partitions, leases.sorted())
	rep.TakeoverStats = summarize(rep.Takeovers)
	return rep, ctx.Err()
}

// deadline is how long an acknowledged ticket may take to its outcome:
// the mode's max wait, one takeover of its match by another allocator,
// and the slack.
func (c Config) deadline() time.Duration {
	return c.MaxWait + events.AllocatorReservationStale + c.Slack
}

// frontends are the frontends' base URLs, where tickets are queued.
func (s *system) frontends() []string {
	var fronts []string
	for _, m := range s.others {
		if m.kind == "frontend" {
			fronts = append(fronts, strings.TrimSuffix(m.ready, "/readyz"))
		}
	}
	return fronts
}

// browserRetries is how many times the TypeScript client sends a failed
// creation again (clients/ts/src/retry.ts, maxRetries).
const browserRetries = 8

// loadRun is the load tool's process. The load tool is not under test:
// it runs once, unsupervised, and ends by itself (each ticket has its
// -timeout).
type loadRun struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	record string // its -record: the tickets the frontends acknowledged
	start  time.Time
}

func (s *system) startLoad(ctx context.Context, fronts []string) (*loadRun, error) {
	l := &loadRun{record: filepath.Join(s.cfg.Dir, "acked.jsonl")}
	args := []string{"run", "-url", strings.Join(fronts, ","),
		"-rate", fmt.Sprint(s.cfg.Rate), "-duration", s.cfg.Duration.String(),
		"-timeout", s.cfg.deadline().String(), "-record", l.record, "-json", "-h2c=false",
		"-token-key", tokenKey(s.cfg.Dir)}
	if s.cfg.Keyed {
		args = append(args, "-idempotency-keys", "-retries", fmt.Sprint(browserRetries))
	}
	l.cmd = exec.CommandContext(ctx, filepath.Join(s.cfg.BinDir, "load"), args...)
	l.cmd.Stdout, l.cmd.Stderr = &l.out, s.cfg.Logs
	l.start = time.Now()
	if err := l.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the load tool: %w", err)
	}
	return l, nil
}

// wait waits for the load tool's end and puts its summary in rep.
func (l *loadRun) wait(rep *Report) error {
	if err := l.cmd.Wait(); err != nil {
		return fmt.Errorf("load tool: %w", err)
	}
	rep.LoadSeconds = time.Since(l.start).Seconds()
	if !json.Valid(l.out.Bytes()) {
		return fmt.Errorf("load tool printed no JSON summary: %q", l.out.String())
	}
	rep.Load = json.RawMessage(l.out.Bytes())
	return nil
}

// prepareReuser builds the reuser, the players who ask twice (an episode a
// second, each two tickets); Run drives it beside the load. Over HTTP each
// player speaks with its own token, minted with the key the frontends
// trust (the load tool's).
func (s *system) prepareReuser(fronts []string, js jetstream.JetStream) (*reuser, error) {
	minter, err := identity.NewMinterFile(tokenKey(s.cfg.Dir), identity.DevIssuerName, identity.DevAudience)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	return newReuser(strconv.FormatUint(s.cfg.Seed%100000, 10), fronts, js, minter.Player, s.cfg.Seed), nil
}

// check waits for the outcomes of the acknowledged tickets and puts the
// checker's verdict in rep.
func (s *system) check(ctx context.Context, rep *Report, acked []Acked, failed []FailedPost, hist *history, js jetstream.JetStream) error {
	deadline := s.cfg.deadline()
	awaitOutcomes(ctx, acked, hist, deadline)
	time.Sleep(2 * time.Second) // a late duplicate outcome would show by now
	results := hist.all()
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	formed, err := formedTimes(fctx, js, results)
	cancel()
	if err != nil {
		return err
	}
	rep.Verdict = Check(acked, results, formed, time.Now(), deadline)
	rep.Timeliness = Timeliness(acked, results, s.cfg.MaxWait, time.Now())
	rep.Lost = lostTickets(ctx, js, acked, results)
	if rep.NoShows > 0 {
		names := map[string]string{}
		for _, m := range s.others {
			if m.kind == "frontend" {
				names[strings.TrimSuffix(m.ready, "/readyz")] = m.Name
			}
		}
		tctx, cancel := context.WithTimeout(ctx, time.Minute)
		rep.NoShowPosts = traceNoShows(tctx, js, rep.Verdict.noShows, failed, names)
		cancel()
	}
	return nil
}

// awaitOutcomes waits for every acknowledged ticket's outcome, up to its
// deadline and a minute more: a ticket that comes late is told apart from
// one that never comes.
func awaitOutcomes(ctx context.Context, acked []Acked, hist *history, deadline time.Duration) {
	var last time.Time
	for _, a := range acked {
		if a.AcceptedAt.After(last) {
			last = a.AcceptedAt
		}
	}
	for {
		v := Check(acked, hist.all(), nil, time.Now(), deadline)
		if v.Outcomes["pending"] == 0 || time.Now().After(last.Add(deadline+time.Minute)) || ctx.Err() != nil {
			return
		}
		time.Sleep(time.Second)
	}
}

// crashes are the exits nobody caused, by process.
func (s *system) crashes() map[string]int {
	out := map[string]int{}
	for _, m := range append(append([]*member(nil), s.nats...), s.others...) {
		if n := m.Crashes(); n > 0 {
			out[m.Name] = n
		}
	}
	return out
}

// inject runs faults until the load's end: one at a time, each a SIGKILL
// and restart of a service or of one NATS node, a SIGSTOP and SIGCONT, or
// (Config.Partitions) a cut and its heal.
func (s *system) inject(ctx context.Context, rep *Report, until time.Time) {
	rng := mrand.New(mrand.NewPCG(s.cfg.Seed, 0x5eed))
	t0 := time.Now()
	note := func(kind, format string, args ...any) {
		rep.Faults[kind]++
		rep.FaultCount++
		rep.FaultLog = append(rep.FaultLog, fmt.Sprintf("%6.1fs %s", time.Since(t0).Seconds(), fmt.Sprintf(format, args...)))
	}
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo))) }
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.FaultEvery):
		}
		if time.Now().After(until) {
			return
		}
		if s.cfg.Partitions && rng.Float64() < s.cfg.PartitionShare {
			s.partitionOnce(rng, note)
			continue
		}
		switch r := rng.IntN(10); {
		case r < 4: // kill a service, restart it
			m := s.others[rng.IntN(len(s.others))]
			down := between(200*time.Millisecond, 2*time.Second)
			m.Kill(down)
			note("kill_"+m.kind, "SIGKILL %s, restarted after %s", m.Name, down.Round(time.Millisecond))
			time.Sleep(down)
			_ = m.awaitReady(ctx)
		case r < 6: // kill one NATS node, restart it
			m := s.nats[rng.IntN(len(s.nats))]
			down := between(time.Second, 4*time.Second)
			m.Kill(down)
			note("kill_nats", "SIGKILL %s, restarted after %s", m.Name, down.Round(time.Millisecond))
			time.Sleep(down)
			_ = m.awaitReady(ctx) // one NATS node down at a time
		default: // pause a process
			all := append(append([]*member(nil), s.others...), s.nats...)
			m := all[rng.IntN(len(all))]
			pause := between(500*time.Millisecond, 3*time.Second)
			if err := m.Signal(syscall.SIGSTOP); err != nil {
				continue
			}
			time.Sleep(pause)
			_ = m.Signal(syscall.SIGCONT)
			note("pause_"+m.kind, "SIGSTOP %s for %s", m.Name, pause.Round(time.Millisecond))
		}
	}
}
