package deploy

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	"sigs.k8s.io/yaml"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
	"github.com/quickmatch-dev/quickmatch/pkg/agones"
)

// composePasswords are the NATS passwords docker-compose.yml requires, by
// variable: one per user of deploy/nats/nats.conf.
func composePasswords() []string {
	var vars []string
	for _, u := range users {
		vars = append(vars, "QUICKMATCH_"+strings.ToUpper(u)+"_PASSWORD="+u+"-secret")
	}
	return vars
}

// loadCompose loads docker-compose.yml the way `docker compose` does:
// interpolation, anchors and merges, then the compose specification's
// validation, with the passwords it requires set.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadComposeEnv(t, composePasswords())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

// loadComposeEnv loads docker-compose.yml with only the variables environ.
func loadComposeEnv(t *testing.T, environ []string) (*types.Project, error) {
	t.Helper()
	root := deploytest.Root(t)
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithName("quickmatch"), cli.WithEnv(environ))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

// docker-compose.yml has no default password: without each NATS user's
// password in the environment it does not load, and the message names
// the variable. (It had one per user, operator-dev and the like, which
// anyone could read here.)
func TestComposeRequiresPasswords(t *testing.T) {
	all := composePasswords()
	for i, v := range all {
		name, _, _ := strings.Cut(v, "=")
		without := append(slices.Clone(all[:i]), all[i+1:]...)
		_, err := loadComposeEnv(t, without)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("without %s: %v", name, err)
		}
	}
}

// Every port docker-compose.yml publishes is on 127.0.0.1: NATS (whose
// results.> carries join tokens), the frontend and the game servers are
// not reachable from other machines (NATS monitoring is not published).
func TestComposePublishesOnLoopbackOnly(t *testing.T) {
	p := loadCompose(t)
	n := 0
	for name, s := range p.Services {
		for _, port := range s.Ports {
			n++
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s on %q", name, port.Published, port.HostIP)
			}
		}
	}
	if n == 0 {
		t.Fatal("no published ports")
	}
}

func env(s types.ServiceConfig, key string) string {
	if v, ok := s.Environment[key]; ok && v != nil {
		return *v
	}
	return ""
}

// docker-compose.yml is valid, and consistent with the services it runs:
// every variable is a flag of its service, every NATS user is one of
// deploy/nats/nats.conf with the password the server gets, every service
// but the sidecars has a healthcheck, the game servers the allocator
// sends players to are the ones published on the host, and each sidecar's
// GameServer has the rooms its game server hosts.
func TestComposeFile(t *testing.T) {
	p := loadCompose(t)
	root := deploytest.Root(t)
	var names []string
	for name := range p.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	want := []string{"allocator", "frontend", "game-1", "game-1-sdk", "game-2", "game-2-sdk", "matcher-1", "matcher-2", "nats", "provision"}
	if !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	natsConf, err := os.ReadFile(filepath.Join(root, "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	nats := p.Services["nats"]
	if nats.HealthCheck == nil || !slices.Contains(nats.Command, "/etc/nats/nats.conf") {
		t.Errorf("nats: healthcheck %v, command %v", nats.HealthCheck, nats.Command)
	}
	mounted := false
	for _, v := range nats.Volumes {
		if v.Target == "/etc/nats/nats.conf" && v.Source == filepath.Join(root, "deploy", "nats", "nats.conf") {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("nats does not mount deploy/nats/nats.conf: %+v", nats.Volumes)
	}

	published := map[string]string{} // host port -> service
	for name, s := range p.Services {
		for _, port := range s.Ports {
			published[port.Published] = name
		}
		if s.Build == nil {
			continue
		}
		// One Dockerfile at the root, a target per service.
		service := s.Build.Target
		dockerfile := s.Build.Dockerfile
		if !filepath.IsAbs(dockerfile) {
			dockerfile = filepath.Join(s.Build.Context, dockerfile)
		}
		if _, err := os.Stat(dockerfile); err != nil || dockerfile != filepath.Join(root, "Dockerfile") {
			t.Errorf("%s: Dockerfile %q: %v", name, s.Build.Dockerfile, err)
		}
		if !slices.Contains([]string{"frontend", "matcher", "allocator", "game"}, service) {
			t.Errorf("%s: build target %q is not a service", name, service)
		}
		flags := deploytest.EnvOf(t, service)
		for key := range s.Environment {
			if !flags[key] {
				t.Errorf("%s: %s is not a flag of %s", name, key, service)
			}
		}
		if name == "provision" { // one-shot: nothing to probe
			if env(s, "PROVISION") != "true" || env(s, "NATS_USER") != "provisioner" || service != "matcher" {
				t.Errorf("provision: PROVISION %q as %q with %s", env(s, "PROVISION"), env(s, "NATS_USER"), service)
			}
		} else if s.HealthCheck == nil || len(s.HealthCheck.Test) < 3 || s.HealthCheck.Test[2] != "probe" {
			t.Errorf("%s: healthcheck %+v does not run the service's probe", name, s.HealthCheck)
		} else if ops := env(s, "OPS_ADDR"); service == "game" && (ops == "" || !strings.Contains(strings.Join(s.HealthCheck.Test, " "), ops+"/healthz")) {
			// /status names the open matches and seated players: off the
			// players' port, as the chart has it, and probed where it is.
			t.Errorf("%s: OPS_ADDR %q, healthcheck %v", name, ops, s.HealthCheck.Test)
		}
		if user := env(s, "NATS_USER"); user != "" {
			if !strings.Contains(string(natsConf), "user: "+user+"\n") {
				t.Errorf("%s: NATS user %q is not in nats.conf", name, user)
			}
			if env(s, "NATS_PASSWORD") != env(nats, strings.ToUpper(user)+"_PASSWORD") {
				t.Errorf("%s: NATS_PASSWORD is not the password nats gives %s", name, user)
			}
			if env(s, "NATS_URL") != "nats://nats:4222" || s.DependsOn["nats"].Condition != types.ServiceConditionHealthy {
				t.Errorf("%s: NATS_URL %q, depends_on %+v", name, env(s, "NATS_URL"), s.DependsOn)
			}
			// Services only bind: they start once the topology exists.
			if name != "provision" && s.DependsOn["provision"].Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s does not wait for the provisioning step: %+v", name, s.DependsOn)
			}
		}
	}
	for _, port := range []string{"3000", "7000", "7001", "4222"} {
		if published[port] == "" {
			t.Errorf("port %s is not published", port)
		}
	}

	alloc := p.Services["allocator"]
	if env(alloc, "BACKEND") != "local" {
		t.Errorf("allocator backend %q", env(alloc, "BACKEND"))
	}
	if len(alloc.Secrets) != 1 || alloc.Secrets[0].Source != "join-key" || env(alloc, "JOIN_KEY_FILE") != "/run/secrets/join-key" {
		t.Errorf("allocator: join key file %q, secrets %+v", env(alloc, "JOIN_KEY_FILE"), alloc.Secrets)
	}
	if p.Secrets["join-key"].Environment != "QUICKMATCH_JOIN_KEY" || p.Configs["join-public-key"].Environment != "QUICKMATCH_JOIN_PUBLIC_KEY" {
		t.Errorf("join keys come from %+v and %+v", p.Secrets["join-key"], p.Configs["join-public-key"])
	}
	for _, item := range strings.Split(env(alloc, "GAME_SERVERS"), ",") {
		name, rest, _ := strings.Cut(item, "=")
		public, status, _ := strings.Cut(rest, "@")
		_, pubPort, _ := net.SplitHostPort(public)
		statusHost, statusPort, _ := net.SplitHostPort(status)
		game, ok := p.Services[statusHost]
		if !ok || statusHost != name {
			t.Errorf("game server %q: no service %q", item, statusHost)
			continue
		}
		if published[pubPort] != name {
			t.Errorf("game server %q: host port %s is published by %q", item, pubPort, published[pubPort])
		}
		// /status is on the ops port once OPS_ADDR is set (the players'
		// port answers 404 there: every server looked down, and no match
		// could be placed).
		serves := env(game, "HTTP_ADDR")
		if ops := env(game, "OPS_ADDR"); ops != "" {
			serves = ops
		}
		if !strings.HasSuffix(serves, ":"+statusPort) {
			t.Errorf("%s serves /status on %q, the allocator reads :%s", name, serves, statusPort)
		}
		// The game server verifies with the public key only; the private
		// key is the allocator's alone.
		if len(game.Secrets) != 0 || len(game.Configs) != 1 || game.Configs[0].Source != "join-public-key" ||
			env(game, "JOIN_PUBLIC_KEYS") == "" || game.Configs[0].Target != env(game, "JOIN_PUBLIC_KEYS") {
			t.Errorf("%s: join public keys at %q, configs %+v, secrets %+v", name, env(game, "JOIN_PUBLIC_KEYS"), game.Configs, game.Secrets)
		}
		sdk := p.Services[name+"-sdk"]
		if sdk.NetworkMode != "service:"+name || env(game, "AGONES_SDK") != "http://localhost:9358" {
			t.Errorf("%s: sidecar network %q, AGONES_SDK %q", name, sdk.NetworkMode, env(game, "AGONES_SDK"))
		}
		var gs struct {
			Spec struct {
				Counters map[string]struct{ Capacity int } `json:"counters"`
				Lists    map[string]struct{ Capacity int } `json:"lists"`
			} `json:"spec"`
		}
		for _, v := range sdk.Volumes {
			data, err := os.ReadFile(v.Source)
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(data, &gs); err != nil {
				t.Fatal(err)
			}
		}
		// The rooms List of the contract (pkg/agones, room.go), not the
		// rooms counter it replaced.
		rooms, players := gs.Spec.Lists[agones.ListRooms].Capacity, gs.Spec.Lists[agones.ListPlayers].Capacity
		if len(gs.Spec.Counters) != 0 || strconv.Itoa(rooms) != env(game, "MAX_ROOMS") || players < 2*rooms || players > 1000 {
			t.Errorf("%s: MAX_ROOMS %q, the sidecar's rooms List capacity %d, players %d, counters %v", name, env(game, "MAX_ROOMS"), rooms, players, gs.Spec.Counters)
		}
	}
}

// The compose stack's NATS server is the release every test, perf run
// and chaos run here uses (the nats-server module these modules
// require): the services lean on its behaviour where it matters (README:
// a consumer's reset in nats-server 2.15), and the compose file kept an
// image three minor releases older than the code it ran.
func TestComposeRunsTheNATSReleaseTheTestsRun(t *testing.T) {
	image := loadCompose(t).Services["nats"].Image
	major, minor, _ := strings.Cut(server.VERSION, ".")
	minor, _, _ = strings.Cut(minor, ".")
	want := "nats:" + major + "." + minor + "-alpine"
	if image != want {
		t.Errorf("docker-compose.yml runs NATS image %q; the tests run nats-server %s: want %q", image, server.VERSION, want)
	}
}

// compose-go refuses what docker compose refuses: the test above would
// catch a broken file.
func TestComposeLoaderRefusesBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown-key.yml": "services:\n  a:\n    image: x\n    helthcheck: {}\n",
		"bad-port.yml":    "services:\n  a:\n    image: x\n    ports: [\"notaport\"]\n",
		"bad-depends.yml": "services:\n  a:\n    image: x\n    depends_on: [b]\n",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		opts, err := cli.NewProjectOptions([]string{path}, cli.WithWorkingDirectory(dir), cli.WithName("x"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := opts.LoadProject(context.Background()); err == nil {
			t.Errorf("%s was accepted", name)
		}
	}
}
