// Package stack runs the whole system on one machine without Kubernetes or
// Docker: an embedded NATS JetStream server and every service as a child
// process (proc.Process) of the binaries built by `make build`. `make run`
// uses it through cmd localstack (Config.Supervise: a service that exits
// is restarted), and the end-to-end tests use it on ports the services
// pick themselves (port 0) and report (ops.Listen).
//
// Files: stack.go (Config, Stack, Start, Stop), nats.go (the embedded
// server with the users of deploy/nats/nats.conf), services.go (the
// provisioning step and each service's settings), proc/ (child processes:
// output, reported address, supervision).
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/quickmatch-dev/quickmatch/dev/stack/proc"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
)

// Config of a local stack.
type Config struct {
	// BinDir holds the frontend, matcher, allocator and game binaries.
	BinDir string
	// DataDir keeps JetStream's files between runs.
	DataDir string
	// NATSPort is the client port; -1 picks a free one.
	//
	// The services' ports below may be 0: the service then binds port 0
	// of Host and the stack reads the port it got from its log
	// (ops.ListeningMsg), so that nothing races for a port probed free.
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
	// Supervise restarts a service that exits, after a backoff, logging
	// the exit and the restart (make run: a killed matcher comes back and
	// retakes its own shards), until Start's context ends or Stop. A
	// paused (SIGSTOP) service has not exited and is not restarted. Without
	// it an exit is final and Done says so.
	Supervise bool
}

// Stack is a running local system.
type Stack struct {
	cfg    Config
	nats   *server.Server
	procs  []*proc.Process
	pprofs int // services given a profiling port so far
	// logs is Config.Logs through kept, the output of every process.
	logs io.Writer
	kept *proc.Kept
	// passwords of the NATS users, by user (with Config.NATSConfig).
	passwords map[string]string
	// joinKey and joinPub are the files of the join token key pair: the
	// allocator signs with the private key, game servers verify with the
	// public one.
	joinKey, joinPub string
	// sealKey is the seal key file of the frontend and the matchers
	// (events.HeaderTaken); matchSealKey, the matchers' alone
	// (events.HeaderMatchSeal).
	sealKey, matchSealKey string
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

// JoinKeyFile is the PEM file of the private key the allocator signs join
// tokens with; the game servers verify them with its public key.
func (s *Stack) JoinKeyFile() string { return s.joinKey }

// GameURL is the base URL of game server i.
func (s *Stack) GameURL(i int) string {
	return "http://" + s.hostPort(s.cfg.GamePorts[i])
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
	return "http://" + s.hostPort(s.cfg.FrontendPort)
}

// keptBytes bounds the output Stack.Output keeps.
const keptBytes = 4 << 20

// Output is the last output of every process of the stack (up to 4 MiB),
// each line prefixed with its process's name, for a failing test to print.
func (s *Stack) Output() string { return s.kept.String() }

// Start starts NATS and every service, and waits until each answers. An
// error that a service exited or never answered carries its last output.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	if cfg.Logs == nil {
		cfg.Logs = io.Discard
	}
	for _, b := range []string{"frontend", "matcher", "allocator", "game"} {
		if _, err := os.Stat(filepath.Join(cfg.BinDir, b)); err != nil {
			return nil, fmt.Errorf("binary %s missing in %s (run make build): %w", b, cfg.BinDir, err)
		}
	}
	// The ports of services that pick their own are written back: the
	// caller's slices stay as they were.
	cfg.GamePorts, cfg.MatcherOpsPorts = slices.Clone(cfg.GamePorts), slices.Clone(cfg.MatcherOpsPorts)
	s := &Stack{cfg: cfg, passwords: map[string]string{}, kept: proc.NewKept(cfg.Logs, keptBytes),
		joinKey: filepath.Join(cfg.DataDir, "join", "join.key"), joinPub: filepath.Join(cfg.DataDir, "join", "join.pub"),
		sealKey:      filepath.Join(cfg.DataDir, "seal", "seal.keys"),
		matchSealKey: filepath.Join(cfg.DataDir, "match-seal", "match-seal.keys")}
	s.logs = s.kept
	// Made once and kept with the data: tokens handed out before a restart
	// still admit after it.
	if err := jointoken.EnsureKeyPair(s.joinKey, s.joinPub); err != nil {
		return nil, err
	}
	if err := events.EnsureSealKeyFile(s.sealKey); err != nil {
		return nil, err
	}
	if err := events.EnsureSealKeyFile(s.matchSealKey); err != nil {
		return nil, err
	}
	if err := s.ensureDevIssuer(); err != nil {
		return nil, err
	}
	if err := s.startNATS(); err != nil {
		return nil, err
	}
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

// DefaultServiceProcs is the GOMAXPROCS each service gets: a quarter of
// this machine's cores, at least two. The stack runs seven processes or
// more (NATS, frontend, two matchers, allocator, two game servers) on one
// machine; each Go runtime sized to every core of a large machine keeps
// threads spinning for work and waking each other across cores, which the
// others pay for (BENCHMARKS.md, fourth measurement). But one is too few:
// a service on one thread cannot take a second core that is idle while
// its own work queues, and while its run queue never empties Go notices a
// socket ready to read only when its monitor polls (after 10 ms without
// a poll), so at and past capacity every read waits. On 2 cores, two each
// took 1,500 tickets/s over HTTP where one each refused 8% of them, and
// at 3,600/s assigned 4-22% more and answered a player's refusals in half
// the time (BENCHMARKS.md, thirtieth round). In Kubernetes, Go (1.25 and
// later) sizes itself to a container's CPU limit when one is set.
func DefaultServiceProcs() int { return max(2, runtime.NumCPU()/4) }

// Done receives a line for each service that exits on its own (without
// Config.Supervise; a supervised service is started again instead).
func (s *Stack) Done() <-chan string {
	out := make(chan string, len(s.procs))
	for _, p := range s.procs {
		done := p.Done()
		go func() {
			<-done
			out <- fmt.Sprintf("%s exited: %v", p.Name, p.Err())
		}()
	}
	return out
}

// Stop sends SIGTERM to every service (frontend first, game servers last),
// waits up to 20 s each, kills what is left, then stops NATS.
func (s *Stack) Stop() error {
	for _, p := range s.procs {
		p.Unsupervise()
	}
	var errs []error
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		err := p.Stop(20 * time.Second)
		var exit *exec.ExitError
		switch {
		case errors.Is(err, proc.ErrKilled):
			errs = append(errs, err)
		case errors.As(err, &exit):
			if exit.ExitCode() != 0 {
				errs = append(errs, fmt.Errorf("%s exited with %d", p.Name, exit.ExitCode()))
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
		}
	}
	if s.nats != nil {
		s.nats.Shutdown()
		s.nats.WaitForShutdown()
	}
	return errors.Join(errs...)
}

// Pids are the process ids of the services now, by name.
func (s *Stack) Pids() map[string]int {
	pids := map[string]int{}
	for _, p := range s.procs {
		pids[p.Name] = p.Pid()
	}
	return pids
}

// hostPort is Host with port.
func (s *Stack) hostPort(port int) string { return net.JoinHostPort(s.cfg.Host, strconv.Itoa(port)) }
