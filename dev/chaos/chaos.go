// Package chaos runs quickmatch as separate processes on a 3-node NATS
// JetStream cluster, drives it with the load tool, kills, restarts and
// pauses processes meanwhile, and hands the history to an independent
// checker (Check). cmd/chaos is the long run; the package test is the
// short one in make test.
package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
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
	// after it. A ticket's deadline is MaxWait, plus one redelivery of its
	// match to another allocator (events.AllocatorAckWait: a killed
	// allocator's match waits that long), plus Slack.
	MaxWait, Slack time.Duration
	// Seed makes the choice of faults repeatable.
	Seed uint64
	// Logs receives every process's output, each line prefixed.
	Logs io.Writer
}

// Report is what a run did and what the checker found.
type Report struct {
	Verdict
	Rate        float64        `json:"rate_per_second"`
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
}

type system struct {
	cfg    Config
	nats   []*proc
	others []*proc // frontends, matchers, allocators, game servers
	urls   string
	ready  map[*proc]string
}

// Run runs the system under load and faults, then checks the history.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Logs == nil {
		cfg.Logs = io.Discard
	}
	if cfg.Slack == 0 {
		cfg.Slack = 30 * time.Second
	}
	s := &system{cfg: cfg, ready: map[*proc]string{}}
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

	record := filepath.Join(cfg.Dir, "acked.jsonl")
	var loadOut bytes.Buffer
	var fronts []string
	for _, p := range s.others {
		if p.kind == "frontend" {
			fronts = append(fronts, strings.TrimSuffix(s.ready[p], "/readyz"))
		}
	}
	// The load tool is not under test: it runs once, unsupervised, and
	// ends by itself (each ticket has its -timeout).
	load := exec.CommandContext(ctx, filepath.Join(cfg.BinDir, "load"), "run", "-url", strings.Join(fronts, ","),
		"-rate", fmt.Sprint(cfg.Rate), "-duration", cfg.Duration.String(),
		"-timeout", (cfg.MaxWait + events.AllocatorAckWait + cfg.Slack).String(), "-record", record, "-json", "-h2c=false",
		"-token-key", tokenKey(cfg.Dir))
	load.Stdout, load.Stderr = &loadOut, cfg.Logs
	loadStart := time.Now()
	if err := load.Start(); err != nil {
		return nil, fmt.Errorf("start the load tool: %w", err)
	}
	rep := &Report{Rate: cfg.Rate, Faults: map[string]int{}}
	nc, js, err := connectJS(s.urls)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	// Players who ask twice: an episode a second, each two tickets.
	// Over HTTP each of them speaks with its own token, minted with the
	// key the frontends trust (the load tool's).
	minter, err := identity.NewMinterFile(tokenKey(cfg.Dir), identity.DevIssuerName, identity.DevAudience)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	reuse := newReuser(strconv.FormatUint(cfg.Seed%100000, 10), fronts, js, minter.Player, cfg.Seed)
	reuseCtx, stopReuse := context.WithCancel(ctx)
	defer stopReuse()
	var reusing sync.WaitGroup
	reusing.Go(func() { reuse.drive(reuseCtx, time.Second, time.Now().Add(cfg.Duration)) })
	s.inject(ctx, rep, time.Now().Add(cfg.Duration))
	reusing.Wait()
	if err := load.Wait(); err != nil {
		return nil, fmt.Errorf("load tool: %w", err)
	}
	rep.LoadSeconds = time.Since(loadStart).Seconds()
	if !json.Valid(loadOut.Bytes()) {
		return nil, fmt.Errorf("load tool printed no JSON summary: %q", loadOut.String())
	}
	rep.Load = json.RawMessage(loadOut.Bytes())

	acked, err := readAcked(record)
	if err != nil {
		return nil, err
	}
	reused, reuseErrs := reuse.result()
	acked = append(acked, reused...)
	rep.Reused, rep.ReuseErrors = len(reused), reuseErrs
	// Wait for every acknowledged ticket's outcome, up to its deadline and
	// a minute more: a ticket that comes late is told apart from one that
	// never comes.
	deadline := cfg.MaxWait + events.AllocatorAckWait + cfg.Slack
	var last time.Time
	for _, a := range acked {
		if a.AcceptedAt.After(last) {
			last = a.AcceptedAt
		}
	}
	for {
		v := Check(acked, hist.all(), nil, time.Now(), deadline)
		if v.Outcomes["pending"] == 0 || time.Now().After(last.Add(deadline+time.Minute)) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second)
	}
	time.Sleep(2 * time.Second) // a late duplicate outcome would show by now
	results := hist.all()
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	formed, err := formedTimes(fctx, js, results)
	cancel()
	if err != nil {
		return nil, err
	}
	rep.Verdict = Check(acked, results, formed, time.Now(), deadline)
	rep.Crashes = map[string]int{}
	for _, p := range append(append([]*proc(nil), s.nats...), s.others...) {
		p.mu.Lock()
		if p.crashes > 0 {
			rep.Crashes[p.name] = p.crashes
		}
		p.mu.Unlock()
	}
	return rep, ctx.Err()
}

// inject runs faults until the load's end: one at a time, each a SIGKILL
// and restart of a service or of one NATS node, or a SIGSTOP and SIGCONT.
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
		switch r := rng.IntN(10); {
		case r < 4: // kill a service, restart it
			p := s.others[rng.IntN(len(s.others))]
			down := between(200*time.Millisecond, 2*time.Second)
			p.kill(down)
			note("kill_"+p.kind, "SIGKILL %s, restarted after %s", p.name, down.Round(time.Millisecond))
			time.Sleep(down)
			_ = waitReady(ctx, p, s.ready[p])
		case r < 6: // kill one NATS node, restart it
			p := s.nats[rng.IntN(len(s.nats))]
			down := between(time.Second, 4*time.Second)
			p.kill(down)
			note("kill_nats", "SIGKILL %s, restarted after %s", p.name, down.Round(time.Millisecond))
			time.Sleep(down)
			_ = waitReady(ctx, p, s.ready[p]) // one NATS node down at a time
		default: // pause a process
			all := append(append([]*proc(nil), s.others...), s.nats...)
			p := all[rng.IntN(len(all))]
			pause := between(500*time.Millisecond, 3*time.Second)
			if err := p.signal(syscall.SIGSTOP); err != nil {
				continue
			}
			time.Sleep(pause)
			_ = p.signal(syscall.SIGCONT)
			note("pause_"+p.kind, "SIGSTOP %s for %s", p.name, pause.Round(time.Millisecond))
		}
	}
}

func freePorts(n int) ([]int, error) {
	var out []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func (s *system) startNATS(ctx context.Context) error {
	ports, err := freePorts(9)
	if err != nil {
		return err
	}
	var routes, urls []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[3+i]))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	for i := range 3 {
		name := fmt.Sprintf("nats-%d", i+1)
		p := &proc{name: name, kind: "nats", path: s.cfg.NATSServer, logs: s.cfg.Logs, args: []string{
			"-n", name, "-a", "127.0.0.1", "-p", strconv.Itoa(ports[i]), "-m", strconv.Itoa(ports[6+i]),
			"-js", "-sd", filepath.Join(s.cfg.Dir, name),
			"--cluster_name", "chaos", "--cluster", routes[i], "--routes", strings.Join(routes, ","),
		}}
		if err := p.supervise(); err != nil {
			return err
		}
		s.nats = append(s.nats, p)
		s.ready[p] = fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", ports[6+i])
	}
	s.urls = strings.Join(urls, ",")
	return s.waitCluster(ctx)
}

// waitCluster waits until the cluster can place a stream of 3 replicas.
func (s *system) waitCluster(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := func() error {
			nc, err := nats.Connect(s.urls, nats.Timeout(2*time.Second))
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return err
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if _, err := js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{Name: "CHAOS_PROBE", Subjects: []string{"chaos.probe"}, Replicas: 3}); err != nil {
				return err
			}
			return js.DeleteStream(cctx, "CHAOS_PROBE")
		}()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("nats cluster not ready: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (s *system) startServices(ctx context.Context) error {
	ports, err := freePorts(9)
	if err != nil {
		return err
	}
	modes := filepath.Join(s.cfg.Dir, "modes.json")
	if err := os.WriteFile(modes, fmt.Appendf(nil, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":%q}]`, s.cfg.MaxWait.String()), 0o600); err != nil {
		return err
	}
	// The join token key pair: allocators sign with the private key, game
	// servers verify with the public one.
	joinKey, joinPub := filepath.Join(s.cfg.Dir, "join.key"), filepath.Join(s.cfg.Dir, "join.pub")
	if err := jointoken.EnsureKeyPair(joinKey, joinPub); err != nil {
		return err
	}
	common := []string{"NATS_URL=" + s.urls, "STREAM_REPLICAS=3", "LOG_FORMAT=text", "LOG_LEVEL=warn", "SHUTDOWN_GRACE=2s"}
	add := func(name, kind, ready string, env ...string) {
		p := &proc{name: name, kind: kind, path: filepath.Join(s.cfg.BinDir, kind), logs: s.cfg.Logs, env: append(append([]string(nil), common...), env...)}
		s.others = append(s.others, p)
		s.ready[p] = ready
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	var games []string
	for i := range 2 {
		name := fmt.Sprintf("game-%d", i+1)
		add(name, "game", "http://"+addr(i)+"/healthz", "HTTP_ADDR="+addr(i), "MAX_ROOMS=5000", "IDLE_TIMEOUT=5s", "JOIN_PUBLIC_KEYS="+joinPub)
		games = append(games, name+"="+addr(i))
	}
	for i := range 3 {
		name := fmt.Sprintf("matcher-%d", i+1)
		add(name, "matcher", "http://"+addr(2+i)+"/readyz", "OPS_ADDR="+addr(2+i), "WORKER_ID="+name, "MODES_FILE="+modes)
	}
	for i := range 2 {
		add(fmt.Sprintf("allocator-%d", i+1), "allocator", "http://"+addr(5+i)+"/readyz", "OPS_ADDR="+addr(5+i), "GAME_SERVERS="+strings.Join(games, ","), "JOIN_KEY_FILE="+joinKey)
	}
	// Identity on, as in a deployment: the frontends trust the public half
	// of a key the load tool mints each player's token with.
	tokenPub, err := ensureTokenKey(s.cfg.Dir)
	if err != nil {
		return err
	}
	for i := range 2 {
		add(fmt.Sprintf("frontend-%d", i+1), "frontend", "http://"+addr(7+i)+"/readyz", "HTTP_ADDR="+addr(7+i),
			"RATE_LIMIT=0", "MIN_FREE_ROOMS=0", "MODES=1v1", "MAX_WAIT="+(2*s.cfg.MaxWait).String(),
			"AUTH_PUBLIC_KEYS="+tokenPub, "AUTH_ISSUER="+identity.DevIssuerName, "AUTH_AUDIENCE="+identity.DevAudience)
	}
	// The provisioning step of an install runs once, first: the services
	// create no streams, they only bind (pkg/servicekit/service).
	if err := provision(ctx, filepath.Join(s.cfg.BinDir, "matcher"), append(common, "MODES_FILE="+modes), s.cfg.Logs); err != nil {
		return err
	}
	// Like pods of a fresh install, all start at once; one that gives up
	// (its broker was too slow) is started again.
	for _, p := range s.others {
		if err := p.supervise(); err != nil {
			return err
		}
	}
	for _, p := range s.others {
		if err := waitReady(ctx, p, s.ready[p]); err != nil {
			return err
		}
	}
	return nil
}

func waitReady(ctx context.Context, p *proc, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready at %s", p.name, url)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *system) stop() {
	var wg sync.WaitGroup
	for _, p := range s.others {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(5 * time.Second) }()
	}
	wg.Wait()
	for _, p := range s.nats {
		p.stop(5 * time.Second)
	}
}

func readAcked(path string) ([]Acked, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load record: %w", err)
	}
	defer f.Close()
	var out []Acked
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var a Acked
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			return nil, fmt.Errorf("load record: %w", err)
		}
		out = append(out, a)
	}
	return out, sc.Err()
}

// history is every result published, read from the RESULTS stream by an
// ordered consumer that follows the cluster through node restarts.
type history struct {
	nc      *nats.Conn
	cc      jetstream.ConsumeContext
	mu      sync.Mutex
	results []events.Result
	bad     int
}

func watchResults(ctx context.Context, urls string) (*history, error) {
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	subj := events.Subjects{}
	var c jetstream.Consumer
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err = js.OrderedConsumer(ctx, subj.ResultsStream(), jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("results history: %w", err)
	}
	h := &history{nc: nc}
	h.cc, err = c.Consume(func(m jetstream.Msg) {
		var r events.Result
		h.mu.Lock()
		defer h.mu.Unlock()
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			h.bad++
			return
		}
		h.results = append(h.results, r)
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return h, nil
}

func (h *history) all() []events.Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]events.Result(nil), h.results...)
}

func (h *history) close() {
	h.cc.Stop()
	h.nc.Close()
}

// tokenKey is the Ed25519 key file the load tool mints players' tokens with.
func tokenKey(dir string) string { return filepath.Join(dir, "identity", "players.pem") }

// ensureTokenKey makes the players' token key and returns the file of its
// public half, which the frontends trust.
func ensureTokenKey(dir string) (string, error) {
	path := filepath.Join(dir, "identity", "players.pub.pem")
	if err := identity.EnsureKeyPair(tokenKey(dir), path); err != nil {
		return "", fmt.Errorf("token key: %w", err)
	}
	return path, nil
}
