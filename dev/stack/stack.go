// Package stack runs the whole system on one machine without Kubernetes or
// Docker: an embedded NATS JetStream server and every service as a child
// process of the binaries built by `make build`. `make run` uses it through
// cmd localstack, and the end-to-end tests use it on random ports.
package stack

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// Config of a local stack.
type Config struct {
	// BinDir holds the frontend, matcher, allocator and game binaries.
	BinDir string
	// DataDir keeps JetStream's files between runs.
	DataDir string
	// NATSPort is the client port; -1 picks a free one.
	NATSPort int
	// PprofBasePort, when set, serves Go's profiles (/debug/pprof/) on
	// Host: the embedded NATS server's on this port, then each NATS-backed
	// service's on the next ports, in the order they start (printed to
	// Logs). 0 is off.
	PprofBasePort int
	// Host is the address every service listens on and players reach.
	Host string
	// FrontendPort serves the API and the page.
	FrontendPort int
	// GamePorts are the game servers, one process each.
	GamePorts []int
	// GameMaxRooms caps the rooms of each game server (0: its default).
	GameMaxRooms int
	// MatcherOpsPorts run one matcher worker each (their ops endpoints);
	// the workers share the shards.
	MatcherOpsPorts []int
	// AllocatorOpsPort is the allocator's ops endpoint.
	AllocatorOpsPort int
	// Services to start, of frontend, matcher, allocator, game; nil means
	// all. (Load runs start the frontend alone to hold waiting clients.)
	Services []string
	// Env adds settings to every service (e.g. RATE_LIMIT=0 for load runs).
	Env []string
	// ServiceProcs is GOMAXPROCS of each service process; 0 means
	// [DefaultServiceProcs]. A setting in Env wins.
	ServiceProcs int
	// Logs receives every service's output, each line prefixed.
	Logs io.Writer
	// NATSConfig is a nats-server configuration file whose users are the
	// services (deploy/nats/nats.conf); empty means that file of the
	// repository this runs in (found from the working directory). NATS
	// always has these users: results.> carries every player's join token.
	// The stack makes each user's password ($FRONTEND_PASSWORD, ...) anew
	// every run and gives it to its service; host (loopback), port and
	// store directory stay the stack's.
	NATSConfig string
}

// natsUsers are the users of the NATS configuration the stack makes
// passwords for: the services', the provisioning step's, and the
// operator's (people at the nats CLI).
var natsUsers = []string{"frontend", "matcher", "allocator", "provisioner", "operator"}

// natsHost is where the stack's NATS listens whatever Config.Host is:
// only the services of this machine talk to it.
const natsHost = "127.0.0.1"

// Stack is a running local system.
type Stack struct {
	cfg    Config
	nats   *server.Server
	procs  []*proc
	pprofs int // services given a profiling port so far
	// passwords of the NATS users, by user (with Config.NATSConfig).
	passwords map[string]string
	// joinKey and joinPub are the files of the join token key pair: the
	// allocator signs with the private key, game servers verify with the
	// public one.
	joinKey, joinPub string
	// devIssuerKey is the development issuer's private key (player
	// tokens), devIssuerPub its public key.
	devIssuerKey, devIssuerPub string
}

// DevIssuerKeyFile is the PEM file of the Ed25519 key the frontend's
// development issuer signs player tokens with: tests and the load tool
// (-token-key) mint tokens the frontend accepts with it.
func (s *Stack) DevIssuerKeyFile() string { return s.devIssuerKey }

// NATSPassword is the password of a NATS user of Config.NATSConfig.
func (s *Stack) NATSPassword(user string) string { return s.passwords[user] }

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan error
}

// JoinKeyFile is the PEM file of the private key the allocator signs join
// tokens with; the game servers verify them with its public key.
func (s *Stack) JoinKeyFile() string { return s.joinKey }

// GameURL is the base URL of game server i.
func (s *Stack) GameURL(i int) string {
	return "http://" + net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.GamePorts[i]))
}

// NATSURL is the client URL of the embedded server.
func (s *Stack) NATSURL() string { return s.nats.ClientURL() }

// OperatorURL is NATSURL with the operator's credentials (nats.conf's user
// for people at the nats CLI: every subject), for the CLI and the load tool.
func (s *Stack) OperatorURL() string {
	u, err := url.Parse(s.NATSURL())
	if err != nil || s.passwords["operator"] == "" {
		return s.NATSURL()
	}
	u.User = url.UserPassword("operator", s.passwords["operator"])
	return u.String()
}

// NATSEnvFile holds NATS_URL, NATS_USER and NATS_PASSWORD of the operator,
// which the nats CLI reads from the environment (mode 0600, rewritten each
// run: the passwords are made per run).
func (s *Stack) NATSEnvFile() string { return filepath.Join(s.cfg.DataDir, "nats.env") }

// FrontendURL is where players open the page.
func (s *Stack) FrontendURL() string {
	return "http://" + net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.FrontendPort))
}

// Start starts NATS and every service, and waits until each answers.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	if cfg.Logs == nil {
		cfg.Logs = io.Discard
	}
	for _, b := range []string{"frontend", "matcher", "allocator", "game"} {
		if _, err := os.Stat(filepath.Join(cfg.BinDir, b)); err != nil {
			return nil, fmt.Errorf("binary %s missing in %s (run make build): %w", b, cfg.BinDir, err)
		}
	}
	s := &Stack{cfg: cfg, passwords: map[string]string{},
		joinKey: filepath.Join(cfg.DataDir, "join", "join.key"), joinPub: filepath.Join(cfg.DataDir, "join", "join.pub")}
	// Made once and kept with the data: tokens handed out before a restart
	// still admit after it.
	if err := jointoken.EnsureKeyPair(s.joinKey, s.joinPub); err != nil {
		return nil, err
	}
	if err := s.ensureDevIssuer(); err != nil {
		return nil, err
	}
	opts := testkit.ServerOptions(filepath.Join(cfg.DataDir, "nats"))
	if cfg.NATSConfig == "" {
		root, err := testkit.RepoRoot()
		if err != nil {
			return nil, fmt.Errorf("nats config: none given, and deploy/nats/nats.conf not found: %w", err)
		}
		cfg.NATSConfig = filepath.Join(root, "deploy", "nats", "nats.conf")
	}
	{
		// The configuration reads its passwords from variables; a copy of
		// it that defines them first is what the server loads, so the
		// process environment is left alone.
		conf, err := os.ReadFile(cfg.NATSConfig)
		if err != nil {
			return nil, fmt.Errorf("nats config: %w", err)
		}
		vars := "SERVER_NAME: quickmatch-stack\n"
		for _, user := range natsUsers {
			s.passwords[user] = newSecret()
			vars += fmt.Sprintf("%s_PASSWORD: %q\n", strings.ToUpper(user), s.passwords[user])
		}
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, err
		}
		wrapperPath := filepath.Join(cfg.DataDir, "nats.conf")
		if err := os.WriteFile(wrapperPath, append([]byte(vars), conf...), 0o600); err != nil {
			return nil, err
		}
		fromFile, err := server.ProcessConfigFile(wrapperPath)
		if err != nil {
			return nil, fmt.Errorf("nats config: %w", err)
		}
		fromFile.StoreDir, fromFile.NoSigs, fromFile.HTTPPort = opts.StoreDir, true, 0
		opts = fromFile
	}
	opts.Host = natsHost
	opts.Port = cfg.NATSPort
	if cfg.PprofBasePort > 0 {
		opts.ProfPort = cfg.PprofBasePort
		fmt.Fprintf(cfg.Logs, "%-10s| profiles on http://%s/debug/pprof/\n", "nats", net.JoinHostPort(natsHost, strconv.Itoa(cfg.PprofBasePort)))
	}
	ns, err := testkit.StartServer(opts)
	if err != nil {
		return nil, err
	}
	s.nats = ns
	if err := s.writeNATSEnv(); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.startServices(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// writeNATSEnv writes NATSEnvFile: the operator's settings, as the nats
// CLI reads them from the environment.
func (s *Stack) writeNATSEnv() error {
	path := s.NATSEnvFile()
	body := fmt.Sprintf("NATS_URL=%s\nNATS_USER=operator\nNATS_PASSWORD=%s\n", s.NATSURL(), s.passwords["operator"])
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600) // a file left by an older run keeps its mode otherwise
}

// DefaultServiceProcs is the GOMAXPROCS each service gets: a quarter of
// this machine's cores, at least one. The stack runs seven processes or
// more (NATS, frontend, two matchers, allocator, two game servers) on one
// machine; each Go runtime sized to every core keeps threads spinning for
// work and waking each other across cores, which the others pay for. On 2
// cores, one each took 1,000 tickets/s over HTTP from a p99 of 123 ms to
// 54 ms, and 2,000/s over HTTP from a p50 of 4.5 s to 0.6 s (BENCHMARKS.md,
// fourth measurement). In Kubernetes, Go (1.25 and later) sizes itself to
// a container's CPU limit when one is set.
func DefaultServiceProcs() int { return max(1, runtime.NumCPU()/4) }

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

func (s *Stack) startServices(ctx context.Context) error {
	host := s.cfg.Host
	addr := func(port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
	procs := s.cfg.ServiceProcs
	if procs <= 0 {
		procs = DefaultServiceProcs()
	}
	// Later settings win (os/exec keeps the last of a key): Env overrides.
	common := append([]string{"NATS_URL=" + s.NATSURL(), "LOG_FORMAT=text", "SHUTDOWN_GRACE=5s",
		"GOMAXPROCS=" + strconv.Itoa(procs)}, s.cfg.Env...)
	want := func(svc string) bool { return s.cfg.Services == nil || slices.Contains(s.cfg.Services, svc) }
	// The services create no streams (their NATS users may not): the
	// provisioning step does, first, as in a real install.
	if err := s.provision(ctx, common); err != nil {
		return err
	}
	var games []string
	checks := map[string]string{}
	for i, port := range s.cfg.GamePorts {
		if !want("game") {
			break
		}
		name := fmt.Sprintf("game-%d", i+1)
		games = append(games, name+"="+addr(port))
		env := append(common, "HTTP_ADDR="+addr(port), "JOIN_PUBLIC_KEYS="+s.joinPub)
		if s.cfg.GameMaxRooms > 0 {
			env = append(env, "MAX_ROOMS="+strconv.Itoa(s.cfg.GameMaxRooms))
		}
		if err := s.spawn(name, "game", env); err != nil {
			return err
		}
		checks[name] = "http://" + addr(port) + "/healthz"
	}
	for i, port := range s.cfg.MatcherOpsPorts {
		if !want("matcher") {
			break
		}
		name := fmt.Sprintf("matcher-%d", i+1)
		if err := s.spawn(name, "matcher", append(common, "OPS_ADDR="+addr(port), "WORKER_ID="+name)); err != nil {
			return err
		}
		checks[name] = "http://" + addr(port) + "/readyz"
	}
	if want("allocator") {
		if err := s.spawn("allocator", "allocator", append(common, "OPS_ADDR="+addr(s.cfg.AllocatorOpsPort), "GAME_SERVERS="+strings.Join(games, ","), "JOIN_KEY_FILE="+s.joinKey)); err != nil {
			return err
		}
		checks["allocator"] = "http://" + addr(s.cfg.AllocatorOpsPort) + "/readyz"
	}
	if want("frontend") {
		if err := s.spawn("frontend", "frontend", append(s.identityEnv(common), "HTTP_ADDR="+addr(s.cfg.FrontendPort))); err != nil {
			return err
		}
		checks["frontend"] = "http://" + addr(s.cfg.FrontendPort) + "/readyz"
	}
	for name, url := range checks {
		if err := s.waitReady(ctx, name, url); err != nil {
			return err
		}
	}
	return nil
}

// ensureDevIssuer makes the development issuer's key once and keeps it
// with the data, so tokens minted before a restart still verify after it.
func (s *Stack) ensureDevIssuer() error {
	s.devIssuerKey = filepath.Join(s.cfg.DataDir, "identity", "dev-issuer.pem")
	s.devIssuerPub = filepath.Join(s.cfg.DataDir, "identity", "dev-issuer.pub.pem")
	if err := identity.EnsureKeyPair(s.devIssuerKey, s.devIssuerPub); err != nil {
		return fmt.Errorf("development issuer: %w", err)
	}
	return nil
}

// identityEnv runs the frontend with identity on: the development issuer
// (POST /dev/token, for the page) when it listens on loopback, else the
// same key trusted as a static public key (tokens minted with
// DevIssuerKeyFile work, but nothing hands them out). Env settings of
// AUTH_* replace these.
func (s *Stack) identityEnv(env []string) []string {
	for _, e := range s.cfg.Env {
		if strings.HasPrefix(e, "AUTH_") {
			return env
		}
	}
	if identity.CheckLoopbackListen(net.JoinHostPort(s.cfg.Host, "0")) == nil {
		return append(slices.Clone(env), "AUTH_DEV_ISSUER_KEY="+s.devIssuerKey)
	}
	return append(slices.Clone(env), "AUTH_PUBLIC_KEYS="+s.devIssuerPub, "AUTH_ISSUER="+identity.DevIssuerName, "AUTH_AUDIENCE="+identity.DevAudience)
}

// provision runs the provisioning step (matcher -provision as the NATS
// user provisioner) with the services' settings, and waits for it.
func (s *Stack) provision(ctx context.Context, common []string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.cfg.BinDir, "matcher"))
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, common...)
	cmd.Env = append(cmd.Env, "PROVISION=true", "NATS_USER=provisioner", "NATS_PASSWORD="+s.passwords["provisioner"])
	out, err := cmd.CombinedOutput()
	prefixLines(s.cfg.Logs, "provision", bytes.NewReader(out))
	if err != nil {
		return fmt.Errorf("provision the NATS topology: %w\n%s", err, out)
	}
	return nil
}

func (s *Stack) spawn(name, bin string, env []string) error {
	if pw, ok := s.passwords[bin]; ok {
		env = append(env, "NATS_USER="+bin, "NATS_PASSWORD="+pw)
	}
	if s.cfg.PprofBasePort > 0 && bin != "game" {
		s.pprofs++
		a := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.PprofBasePort+s.pprofs))
		env = append(env, "PPROF_ADDR="+a)
		fmt.Fprintf(s.cfg.Logs, "%-10s| profiles on http://%s/debug/pprof/\n", name, a)
	}
	cmd := exec.Command(filepath.Join(s.cfg.BinDir, bin))
	// Only the stack's settings: a stray NATS_URL in the caller's shell
	// must not point a service elsewhere.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan error, 1)}
	var copied sync.WaitGroup
	copied.Add(1)
	go func() {
		defer copied.Done()
		prefixLines(s.cfg.Logs, name, out)
	}()
	go func() {
		copied.Wait()
		p.done <- cmd.Wait()
	}()
	s.procs = append(s.procs, p)
	return nil
}

var logMu sync.Mutex

func prefixLines(w io.Writer, name string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		logMu.Lock()
		fmt.Fprintf(w, "%-10s| %s\n", name, sc.Text())
		logMu.Unlock()
	}
}

func (s *Stack) waitReady(ctx context.Context, name, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range s.procs {
			select {
			case err := <-p.done:
				p.done <- err
				return fmt.Errorf("%s exited during start-up: %v", p.name, err)
			default:
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready at %s after 30s", name, url)
}

// Done is closed when any service exits on its own.
func (s *Stack) Done() <-chan string {
	out := make(chan string, len(s.procs))
	for _, p := range s.procs {
		go func() {
			err := <-p.done
			p.done <- err
			out <- fmt.Sprintf("%s exited: %v", p.name, err)
		}()
	}
	return out
}

// Stop sends SIGTERM to every service (frontend first, game servers last),
// waits up to 20 s each, kills what is left, then stops NATS.
func (s *Stack) Stop() error {
	var errs []error
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			p.done <- err
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
			} else if exit != nil && exit.ExitCode() != 0 {
				errs = append(errs, fmt.Errorf("%s exited with %d", p.name, exit.ExitCode()))
			}
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			errs = append(errs, fmt.Errorf("%s did not stop within 20s; killed", p.name))
		}
	}
	if s.nats != nil {
		s.nats.Shutdown()
		s.nats.WaitForShutdown()
	}
	return errors.Join(errs...)
}
