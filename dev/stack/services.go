package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/quickmatch-dev/quickmatch/dev/stack/proc"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
)

// startTimeout bounds the wait for a service's address and readiness.
const startTimeout = 30 * time.Second

// service is a service process to start: bin with env, listening on the
// port at *port (0: one it picks, written back once reported) given as
// the setting addrVar, ready when path (on that port) answers 200.
type service struct {
	name, bin string
	env       []string
	addrVar   string
	port      *int
	path      string
	proc      *proc.Process // once started
}

func (s *Stack) startServices(ctx context.Context) error {
	common := s.commonEnv()
	// The services create no streams (their NATS users may not): the
	// provisioning step does, first, as in a real install.
	if err := s.provision(ctx, common); err != nil {
		return err
	}
	var started []service
	start := func(svc service) error {
		p, err := s.startService(ctx, svc)
		svc.proc = p
		started = append(started, svc)
		return err
	}
	// The game servers first: the allocator is given their addresses.
	var games []string
	for i := range s.cfg.GamePorts {
		if !s.want("game") {
			break
		}
		env := append(slices.Clone(common), "JOIN_PUBLIC_KEYS="+s.joinPub)
		if s.cfg.GameMaxRooms > 0 {
			env = append(env, "MAX_ROOMS="+strconv.Itoa(s.cfg.GameMaxRooms))
		}
		name := fmt.Sprintf("game-%d", i+1)
		if err := start(service{name, "game", env, "HTTP_ADDR", &s.cfg.GamePorts[i], "/healthz", nil}); err != nil {
			return err
		}
		games = append(games, name+"="+s.hostPort(s.cfg.GamePorts[i]))
	}
	for i := range s.cfg.MatcherOpsPorts {
		if !s.want("matcher") {
			break
		}
		name := fmt.Sprintf("matcher-%d", i+1)
		env := append(slices.Clone(common), "WORKER_ID="+name, "SEAL_KEY_FILE="+s.sealKey, "MATCH_SEAL_KEY_FILE="+s.matchSealKey)
		if err := start(service{name, "matcher", env, "OPS_ADDR", &s.cfg.MatcherOpsPorts[i], "/readyz", nil}); err != nil {
			return err
		}
	}
	if s.want("allocator") {
		env := append(slices.Clone(common), "GAME_SERVERS="+strings.Join(games, ","), "JOIN_KEY_FILE="+s.joinKey)
		if err := start(service{"allocator", "allocator", env, "OPS_ADDR", &s.cfg.AllocatorOpsPort, "/readyz", nil}); err != nil {
			return err
		}
	}
	if s.want("frontend") {
		env := append(s.identityEnv(common), "SEAL_KEY_FILE="+s.sealKey)
		if err := start(service{"frontend", "frontend", env, "HTTP_ADDR", &s.cfg.FrontendPort, "/readyz", nil}); err != nil {
			return err
		}
	}
	return s.waitReady(ctx, started)
}

// want says whether Config.Services has svc.
func (s *Stack) want(svc string) bool {
	return s.cfg.Services == nil || slices.Contains(s.cfg.Services, svc)
}

// commonEnv is every service's settings. Later settings win (os/exec
// keeps the last of a key): Config.Env overrides.
func (s *Stack) commonEnv() []string {
	procs := s.cfg.ServiceProcs
	if procs <= 0 {
		procs = DefaultServiceProcs()
	}
	env := []string{"NATS_URL=" + s.NATSURL(), "LOG_FORMAT=text", "SHUTDOWN_GRACE=5s",
		"GOMAXPROCS=" + strconv.Itoa(procs)}
	// The OpenTelemetry SDK's own settings pass through, so that
	// `OTEL_EXPORTER_OTLP_ENDPOINT=... make run` traces the local stack.
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	return append(env, s.cfg.Env...)
}

// startService starts svc and, if it picks its port, waits until it
// reports it: later services are given its address, and a restart
// (Config.Supervise) binds it again.
func (s *Stack) startService(ctx context.Context, svc service) (*proc.Process, error) {
	env := append(svc.env, svc.addrVar+"="+s.hostPort(*svc.port))
	if pw, ok := s.passwords[svc.bin]; ok {
		env = append(env, "NATS_USER="+svc.bin, "NATS_PASSWORD="+pw)
	}
	if s.cfg.PprofBasePort > 0 && svc.bin != "game" {
		s.pprofs++
		a := s.hostPort(s.cfg.PprofBasePort + s.pprofs)
		env = append(env, "PPROF_ADDR="+a)
		fmt.Fprint(s.logs, proc.Prefix(svc.name, "profiles on http://"+a+"/debug/pprof/"))
	}
	p := &proc.Process{Name: svc.name, Path: filepath.Join(s.cfg.BinDir, svc.bin), Env: env, Logs: s.logs}
	start := p.Start
	if s.cfg.Supervise {
		start = func() error { return p.Supervise(ctx) }
	}
	if err := start(); err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	if *svc.port != 0 {
		return p, nil
	}
	addr, err := p.Listening(ctx, startTimeout)
	if err != nil {
		return p, err
	}
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		*svc.port, err = strconv.Atoi(port)
	}
	if err != nil {
		return p, fmt.Errorf("%s reported listening on %q: %w", svc.name, addr, err)
	}
	p.Setenv(svc.addrVar + "=" + s.hostPort(*svc.port))
	return p, nil
}

// waitReady waits until every service started answers on its path
// (proc.WaitReady), failing as soon as the one waited for exits.
func (s *Stack) waitReady(ctx context.Context, started []service) error {
	deadline := time.Now().Add(startTimeout)
	for _, svc := range started {
		if err := svc.proc.WaitReady(ctx, "http://"+s.hostPort(*svc.port)+svc.path, time.Until(deadline)); err != nil {
			return err
		}
	}
	return nil
}

// ensureDevIssuer makes the development issuer's key once and keeps it
// with the data, so tokens minted before a restart still verify after it.
func (s *Stack) ensureDevIssuer() error {
	s.devIssuerKey = filepath.Join(s.cfg.DataDir, filepath.FromSlash(identity.DevIssuerKeyFile))
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
// user provisioner) with the services' settings, and waits for it (a
// minute at most: it retries until NATS takes the topology).
func (s *Stack) provision(ctx context.Context, common []string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	p := &proc.Process{Name: "provision", Path: filepath.Join(s.cfg.BinDir, "matcher"), Logs: s.logs,
		Env: append(slices.Clone(common), "PROVISION=true", "NATS_USER=provisioner", "NATS_PASSWORD="+s.passwords["provisioner"])}
	if err := p.Run(ctx); err != nil {
		return fmt.Errorf("provision the NATS topology: %w", err)
	}
	return nil
}
