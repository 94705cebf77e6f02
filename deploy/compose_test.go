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
	"sigs.k8s.io/yaml"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
)

// loadCompose loads docker-compose.yml the way `docker compose` does:
// interpolation, anchors and merges, then the compose specification's
// validation.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root := deploytest.Root(t)
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithName("quickmatch"), cli.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
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
	want := []string{"allocator", "frontend", "game-1", "game-1-sdk", "game-2", "game-2-sdk", "matcher-1", "matcher-2", "nats"}
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
		service := strings.TrimSuffix(strings.TrimPrefix(s.Build.Dockerfile, "services/"), "/Dockerfile")
		if _, err := os.Stat(filepath.Join(root, s.Build.Dockerfile)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		flags := deploytest.EnvOf(t, service)
		for key := range s.Environment {
			if !flags[key] {
				t.Errorf("%s: %s is not a flag of %s", name, key, service)
			}
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) < 3 || s.HealthCheck.Test[2] != "probe" {
			t.Errorf("%s: healthcheck %+v does not run the service's probe", name, s.HealthCheck)
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
		if !strings.HasSuffix(env(game, "HTTP_ADDR"), ":"+statusPort) {
			t.Errorf("%s listens on %q, the allocator reads :%s", name, env(game, "HTTP_ADDR"), statusPort)
		}
		if env(game, "JOIN_SECRET") != env(alloc, "JOIN_SECRET") || env(game, "JOIN_SECRET") == "" {
			t.Errorf("%s and the allocator do not share the join secret", name)
		}
		sdk := p.Services[name+"-sdk"]
		if sdk.NetworkMode != "service:"+name || env(game, "AGONES_SDK") != "http://localhost:9358" {
			t.Errorf("%s: sidecar network %q, AGONES_SDK %q", name, sdk.NetworkMode, env(game, "AGONES_SDK"))
		}
		var gs struct {
			Spec struct {
				Counters map[string]struct{ Capacity int } `json:"counters"`
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
		if strconv.Itoa(gs.Spec.Counters["rooms"].Capacity) != env(game, "MAX_ROOMS") {
			t.Errorf("%s: MAX_ROOMS %q, the sidecar's rooms capacity %d", name, env(game, "MAX_ROOMS"), gs.Spec.Counters["rooms"].Capacity)
		}
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
