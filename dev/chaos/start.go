package chaos

// Starting and stopping the system under test: a 3-node NATS cluster, then
// the services, each supervised (procs.go, dev/stack/proc) and waited for
// until ready.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/dev/stack/proc"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

func (s *system) startNATS(ctx context.Context) error {
	// A node cannot be started on port 0 and asked where it went: every
	// node is given the cluster's routes before any starts, and a killed
	// node comes back on the same ports (the services' NATS_URL lists them).
	ports, err := testkit.Ports(9)
	if err != nil {
		return err
	}
	// Each node routes to the others through links (partition.go), and
	// tells neither its peers nor its clients an address around them.
	if s.net, err = newNetwork(ports[3:6]); err != nil {
		return err
	}
	s.clientPorts = ports[:3]
	var urls []string
	for i := range 3 {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	for i := range 3 {
		name := fmt.Sprintf("nats-%d", i+1)
		m := newMember(name, "nats", s.cfg.NATSServer, s.cfg.Logs, []string{
			"-n", name, "-a", "127.0.0.1", "-p", strconv.Itoa(ports[i]), "-m", strconv.Itoa(ports[6+i]),
			"-js", "-sd", filepath.Join(s.cfg.Dir, name), "--cluster_name", "chaos",
			"--cluster", fmt.Sprintf("nats://127.0.0.1:%d", ports[3+i]), "--routes", s.net.routeURLs(i),
			"--cluster_advertise", s.net.advertise(), "--no_advertise",
		}, nil)
		m.ready = fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", ports[6+i])
		s.nats = append(s.nats, m)
		if err := m.supervise(); err != nil {
			return err
		}
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
	// One rule set for the frontends and the matchers (pkg/rules): 1v1 only.
	ruleSet := filepath.Join(s.cfg.Dir, "rules.json")
	if err := os.WriteFile(ruleSet, fmt.Appendf(nil, `{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":%q}]}`, s.cfg.MaxWait.String()), 0o600); err != nil {
		return err
	}
	// The join token key pair: allocators sign with the private key, game
	// servers verify with the public one.
	joinKey, joinPub := filepath.Join(s.cfg.Dir, "join.key"), filepath.Join(s.cfg.Dir, "join.pub")
	if err := jointoken.EnsureKeyPair(joinKey, joinPub); err != nil {
		return err
	}
	// The seal key of the frontends and the matchers: a ticket taken
	// first is taken in without a read (events.HeaderTaken). The
	// matchers' own: the match each claim carries is sealed
	// (events.HeaderMatchSeal), and a recovery sends only what verifies.
	sealKey, matchSealKey := filepath.Join(s.cfg.Dir, "seal.keys"), filepath.Join(s.cfg.Dir, "match-seal.keys")
	if err := errors.Join(events.EnsureSealKeyFile(sealKey), events.EnsureSealKeyFile(matchSealKey)); err != nil {
		return err
	}
	// Identity on, as in a deployment: the frontends trust the public half
	// of a key the load tool mints each player's token with.
	tokenPub, err := ensureTokenKey(s.cfg.Dir)
	if err != nil {
		return err
	}
	// A service says where it listens whatever its level (ops.Listen).
	common := []string{"NATS_URL=" + s.urls, "STREAM_REPLICAS=3", "LOG_FORMAT=text", "LOG_LEVEL=warn", "SHUTDOWN_GRACE=2s"}
	// The provisioning step of an install runs once, first: the services
	// create no streams, they only bind (pkg/servicekit/service).
	if err := s.provision(ctx, append(common, "RULES="+ruleSet)); err != nil {
		return err
	}
	// Each binds port 0 and says where (launch). Each reaches NATS through
	// links of its own (later settings win: its NATS_URL, not common's).
	var linkErr error
	add := func(name, kind string, env ...string) *member {
		env = append(append(append([]string(nil), common...), addrVar(kind)+"=127.0.0.1:0"), env...)
		if kind != "game" {
			url, err := s.net.clientURLs(name, s.clientPorts)
			linkErr = errors.Join(linkErr, err)
			env = append(env, "NATS_URL="+url)
		}
		m := newMember(name, kind, filepath.Join(s.cfg.BinDir, kind), s.cfg.Logs, nil, env)
		s.others = append(s.others, m)
		return m
	}
	// The game servers first: the allocators are given their addresses.
	var games []*member
	for i := range 2 {
		games = append(games, add(fmt.Sprintf("game-%d", i+1), "game", "MAX_ROOMS=5000", "IDLE_TIMEOUT=5s", "JOIN_PUBLIC_KEYS="+joinPub))
	}
	gameServers, err := s.launch(ctx, games)
	if err != nil {
		return err
	}
	var rest []*member
	for i := range 3 {
		name := fmt.Sprintf("matcher-%d", i+1)
		// At info, a matcher logs every ticket it drops and why: the
		// trail a ticket left without an outcome is read from.
		rest = append(rest, add(name, "matcher", "WORKER_ID="+name, "RULES="+ruleSet, "LOG_LEVEL=info", "SEAL_KEY_FILE="+sealKey, "MATCH_SEAL_KEY_FILE="+matchSealKey))
	}
	for i := range 2 {
		rest = append(rest, add(fmt.Sprintf("allocator-%d", i+1), "allocator", "GAME_SERVERS="+strings.Join(gameServers, ","), "JOIN_KEY_FILE="+joinKey))
	}
	for i := range 2 {
		rest = append(rest, add(fmt.Sprintf("frontend-%d", i+1), "frontend",
			"RATE_LIMIT=0", "CREATE_RATE_LIMIT=0", "MIN_FREE_ROOMS=0", "RULES="+ruleSet, "SEAL_KEY_FILE="+sealKey,
			"AUTH_PUBLIC_KEYS="+tokenPub, "AUTH_ISSUER="+identity.DevIssuerName, "AUTH_AUDIENCE="+identity.DevAudience))
	}
	if linkErr != nil {
		return linkErr
	}
	_, err = s.launch(ctx, rest)
	return err
}

// provision runs the provisioning step (matcher -provision, which retries
// until a cluster that has just formed places its 3-replica streams) with
// env, and waits for it, a minute at most.
func (s *system) provision(ctx context.Context, env []string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	p := &proc.Process{Name: "provision", Path: filepath.Join(s.cfg.BinDir, "matcher"), Logs: s.cfg.Logs,
		Env: append([]string{"PROVISION=true"}, env...)}
	if err := p.Run(ctx); err != nil {
		return fmt.Errorf("provision the topology: %w", err)
	}
	return nil
}

// launch starts ms, each on port 0, all at once like pods of a fresh
// install; reads the address each says it listens on (a restart binds it
// again; m.ready is a URL on it); and waits until all are ready.
// It returns their names and addresses (game-1=127.0.0.1:41234).
func (s *system) launch(ctx context.Context, ms []*member) ([]string, error) {
	for _, m := range ms {
		if err := m.supervise(); err != nil {
			return nil, err
		}
	}
	var addrs []string
	for _, m := range ms {
		addr, err := m.Listening(ctx, startTimeout)
		if err != nil {
			return nil, err
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%s says it listens on %q: %w", m.Name, addr, err)
		}
		m.Setenv(addrVar(m.kind) + "=" + addr)
		m.ready = "http://" + addr + readyPath(m.kind)
		addrs = append(addrs, m.Name+"="+addr)
	}
	for _, m := range ms {
		if err := m.WaitReady(ctx, m.ready, startTimeout); err != nil {
			return nil, err
		}
	}
	return addrs, nil
}

// readyPath is where a service answers 200 once ready: the game server's
// health, the others' readiness.
func readyPath(kind string) string {
	if kind == "game" {
		return "/healthz"
	}
	return "/readyz"
}

// addrVar is the setting of a service's listen address: the public one of
// the frontend and the game server, the ops endpoints' of the others.
func addrVar(kind string) string {
	if kind == "frontend" || kind == "game" {
		return "HTTP_ADDR"
	}
	return "OPS_ADDR"
}

// stop stops the services, all at once, then the NATS nodes.
func (s *system) stop() {
	for _, m := range s.others {
		m.Unsupervise() // none restarted while the others stop
	}
	var wg sync.WaitGroup
	for _, m := range s.others {
		wg.Go(func() { _ = m.Stop(5 * time.Second) })
	}
	wg.Wait()
	for _, m := range s.nats {
		_ = m.Stop(5 * time.Second)
	}
	if s.net != nil {
		s.net.close()
	}
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
