package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// helm lint --strict, on every value set.
func TestChartLintStrict(t *testing.T) {
	for _, vs := range deploytest.ValueSets() {
		t.Run(vs.Name, func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = "quickmatch"
			res := lint.Run([]string{deploytest.ChartDir(t)}, vs.Values(t))
			for _, m := range res.Messages {
				if m.Severity > support.InfoSev { // --strict fails on warnings and errors
					t.Errorf("lint: %s", m)
				}
			}
			for _, err := range res.Errors {
				t.Errorf("lint error: %v", err)
			}
		})
	}
}

// Every rendered object decodes strictly into its Go type, and what the
// chart promises holds: grace periods agree with the shutdown flags, every
// environment variable is a flag of its service, the allocator's RBAC is
// exactly what it uses.
func TestChartRendersStrictTypedObjects(t *testing.T) {
	ch := deploytest.Load(t)
	env := map[string]map[string]bool{}
	for _, s := range []string{"frontend", "matcher", "allocator", "game"} {
		env[s] = deploytest.EnvOf(t, s)
	}
	for _, vs := range deploytest.ValueSets() {
		t.Run(vs.Name, func(t *testing.T) {
			vals := vs.Values(t)
			regionLabel := agones.RegionLabel
			if g, ok := vals["gameServers"].(map[string]any); ok && g["regionLabel"] != nil {
				regionLabel = g["regionLabel"].(string)
			}
			objects, hooks, notes, err := deploytest.Render(ch, "quickmatch", vals)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			if len(objects) == 0 || !strings.Contains(notes, "helm test qm") {
				t.Fatalf("%d objects; notes:\n%s", len(objects), notes)
			}
			// The defaults' regions are eu, us and asia, their one fleet
			// eu's: the notes say the others are served from eu. A layout
			// whose regions all have fleets is told nothing.
			switch bare := strings.Contains(notes, "WARNING: no fleet serves region"); vs.Name {
			case "defaults":
				if !strings.Contains(notes, "no fleet serves region us, asia") {
					t.Errorf("defaults: notes do not say us and asia have no fleet:\n%s", notes)
				}
			case "fleets-per-region-and-mode":
				if bare {
					t.Errorf("%s: notes warn of a region with no fleet:\n%s", vs.Name, notes)
				}
			}
			kinds := map[string]int{}
			for _, o := range append(objects, hooks...) {
				v, err := deploytest.Typed(o)
				if err != nil {
					t.Error(err)
					continue
				}
				kinds[o.Kind]++
				switch v := v.(type) {
				case *appsv1.Deployment:
					checkPod(t, o.String(), v.Spec.Template.Spec, env)
					checkSpread(t, o.String(), v)
				case *deploytest.Fleet:
					checkFleet(t, v, regionLabel, env)
				case *agones.FleetAutoscaler:
					if v.Spec.FleetName == "" || v.Spec.Policy.Type == "" || v.Spec.Policy.Counter != nil {
						t.Errorf("%s: %+v", o, v.Spec)
					}
					if l := v.Spec.Policy.List; l != nil && l.Key != agones.ListRooms {
						t.Errorf("%s: List policy on %q, want %q", o, l.Key, agones.ListRooms)
					}
				case *networkingv1.NetworkPolicy:
					checkGamePolicy(t, o.String(), v)
					checkNoGameServerPeer(t, o.String(), v)
				case *deploytest.Monitor:
					// The game servers' and the frontends' metrics are on
					// their ops port (checkFleet, checkEnv), not the one
					// players reach.
					for _, ep := range v.Spec.PodMetricsEndpoints {
						if ep.Port != "ops" {
							t.Errorf("%s: scrapes port %q, want the pods' ops port", o, ep.Port)
						}
					}
					for _, ep := range v.Spec.Endpoints {
						if ep.Port != "ops" {
							t.Errorf("%s: scrapes port %q, want the ops port", o, ep.Port)
						}
					}
				case *corev1.Pod:
					if len(v.Spec.Containers) != 1 || v.Spec.Containers[0].Args[0] != "probe" {
						t.Errorf("%s: test pod does not run the probe: %+v", o, v.Spec.Containers)
					}
				}
			}
			t.Logf("%s: %v", vs.Name, kinds)
			switch vs.Name {
			case "fleets-per-region-and-mode":
				// A budget of 0 (no voluntary eviction) is 0, not the default.
				for _, o := range objects {
					if v, err := deploytest.Typed(o); err == nil {
						if p, ok := v.(*policyv1.PodDisruptionBudget); ok && strings.HasSuffix(p.Name, "frontend") && (p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.IntValue() != 0) {
							t.Errorf("frontend pdb maxUnavailable %v, want 0", p.Spec.MaxUnavailable)
						}
					}
				}
			case "buffer-autoscaler-no-netpol":
				// The frontend's autoscaler owns its count: the Deployment
				// says the count it runs (lookup), or, with no cluster to
				// read (here), none: not frontend.replicas, which every
				// upgrade would set it back to, nor minReplicas, which
				// every sync of a render without the cluster would.
				for _, o := range objects {
					if v, err := deploytest.Typed(o); err == nil {
						if d, ok := v.(*appsv1.Deployment); ok && strings.HasSuffix(d.Name, "frontend") && d.Spec.Replicas != nil {
							t.Errorf("frontend Deployment with its autoscaler and no cluster to read says replicas %d", *d.Spec.Replicas)
						}
					}
				}
				if kinds["HorizontalPodAutoscaler"] != 1 {
					t.Errorf("%d autoscalers, want the frontend's", kinds["HorizontalPodAutoscaler"])
				}
			case "defaults":
				want := map[string]int{"Deployment": 3, "Fleet": 1, "FleetAutoscaler": 1, "HorizontalPodAutoscaler": 1, "Role": 1, "RoleBinding": 1, "NetworkPolicy": 4, "PodDisruptionBudget": 3, "Secret": 3, "Pod": 2} // Secrets: the join key, the seal keys, the match seal keys
				for k, n := range want {
					if kinds[k] != n {
						t.Errorf("%d %s, want %d", kinds[k], k, n)
					}
				}
			case "game-cluster":
				if kinds["Deployment"] != 0 || kinds["Fleet"] != 1 || kinds["Role"] != 1 || kinds["Secret"] != 1 {
					t.Errorf("game cluster renders %v", kinds)
				}
			case "control-cluster":
				if kinds["Fleet"] != 0 || kinds["Role"] != 0 || kinds["ConfigMap"] != 1 {
					t.Errorf("control cluster renders %v", kinds)
				}
			}
		})
	}
}

// checkPod: the pod's env vars are its service's flags, and its grace
// period covers the service's shutdown.
func checkPod(t *testing.T, name string, pod corev1.PodSpec, env map[string]map[string]bool) {
	t.Helper()
	c := pod.Containers[0]
	flags := env[c.Name]
	if flags == nil {
		t.Errorf("%s: container %q is no service", name, c.Name)
		return
	}
	vars := map[string]string{}
	for _, e := range c.Env {
		if !flags[e.Name] {
			t.Errorf("%s: env %s is not a flag of %s", name, e.Name, c.Name)
		}
		vars[e.Name] = e.Value
	}
	need := secondsOf(t, vars["SHUTDOWN_GRACE"]) + secondsOf(t, vars["READINESS_DRAIN"])
	// What the allocator refuses at start, the chart does not render.
	if g := time.Duration(secondsOf(t, vars["SHUTDOWN_GRACE"])) * time.Second; vars["BACKEND"] == "kube" && g < events.AllocatorStopGrace {
		t.Errorf("%s: allocator shutdown grace %s below %s", name, g, events.AllocatorStopGrace)
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds < int64(need)+5 {
		t.Errorf("%s: terminationGracePeriodSeconds %v does not cover shutdown %ds + 5", name, pod.TerminationGracePeriodSeconds, need)
	}
	if c.ReadinessProbe == nil || c.LivenessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("%s: probes %+v %+v", name, c.ReadinessProbe, c.LivenessProbe)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: not runAsNonRoot", name)
	}
}

// checkFleet: the rooms and players Lists of the contract (pkg/agones,
// room.go) within Agones' List limit and no rooms counter, priorities on
// the rooms List, the region label, and a pod whose env vars are the game
// server's flags.
func checkFleet(t *testing.T, f *deploytest.Fleet, regionLabel string, env map[string]map[string]bool) {
	t.Helper()
	gs := f.Spec.Template.Spec
	rooms, players := gs.Lists[agones.ListRooms], gs.Lists[agones.ListPlayers]
	if rooms.Capacity == nil || players.Capacity == nil || len(gs.Lists) != 2 || len(gs.Counters) != 0 {
		t.Fatalf("fleet %s: want the rooms and players Lists and no counter: %+v", f.Name, gs)
	}
	if *rooms.Capacity < 1 || *players.Capacity > 1000 || *players.Capacity < 2**rooms.Capacity {
		t.Errorf("fleet %s: rooms capacity %d, players capacity %d", f.Name, *rooms.Capacity, *players.Capacity)
	}
	if want := []agones.Priority{{Type: "List", Key: agones.ListRooms, Order: "Ascending"}}; !slices.Equal(f.Spec.Priorities, want) {
		t.Errorf("fleet %s: priorities %+v, want %+v", f.Name, f.Spec.Priorities, want)
	}
	if f.Labels[regionLabel] == "" {
		t.Errorf("fleet %s: no %s label: %v", f.Name, regionLabel, f.Labels)
	}
	if got := f.Labels[agones.RoomsPerServerLabel]; got != fmt.Sprint(*rooms.Capacity) {
		t.Errorf("fleet %s: %s label %q, want its rooms capacity %d", f.Name, agones.RoomsPerServerLabel, got, *rooms.Capacity)
	}
	pod := gs.Template.Spec
	c := pod.Containers[0]
	vars := map[string]string{}
	for _, e := range c.Env {
		if !env["game"][e.Name] {
			t.Errorf("fleet: env %s is not a flag of game", e.Name)
		}
		vars[e.Name] = e.Value
	}
	if vars["MAX_ROOMS"] != fmt.Sprint(*rooms.Capacity) {
		t.Errorf("fleet: MAX_ROOMS %q but rooms capacity %d", vars["MAX_ROOMS"], *rooms.Capacity)
	}
	if g := secondsOf(t, vars["SHUTDOWN_GRACE"]); pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds <= int64(g) {
		t.Errorf("fleet: terminationGracePeriodSeconds %v does not cover shutdown grace %ds", pod.TerminationGracePeriodSeconds, g)
	}
	if len(gs.Ports) != 1 || gs.Ports[0].ContainerPort != 7000 {
		t.Errorf("fleet: ports %+v, want the players' 7000 alone", gs.Ports)
	}
	// /status and /metrics on a port of the pod's own, not the players'.
	if vars["OPS_ADDR"] != ":9104" || len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9104 || c.Ports[0].Name != "ops" {
		t.Errorf("fleet: OPS_ADDR %q, container ports %+v: want :9104, named ops", vars["OPS_ADDR"], c.Ports)
	}
}

// checkGamePolicy: the game servers' players' port is open to anyone,
// their ops port (/status: open match ids, seated player ids) only to
// the listed sources.
func checkGamePolicy(t *testing.T, name string, p *networkingv1.NetworkPolicy) {
	t.Helper()
	if p.Spec.PodSelector.MatchLabels["app.kubernetes.io/component"] != "game" {
		return
	}
	open := map[int32]bool{}
	for _, rule := range p.Spec.Ingress {
		for _, port := range rule.Ports {
			open[port.Port.IntVal] = len(rule.From) == 0
		}
	}
	if len(open) != 2 || !open[7000] || open[9104] {
		t.Errorf("%s: open to anyone by port %v, want 7000 alone, and 9104 from listed sources", name, open)
	}
}

// checkNoGameServerPeer: no ops port is open to a game server, which runs
// players' traffic and may be compromised (another's /status names its
// open matches and seated players; the allocator's /autoscale costs
// stream reads a call). The release's pods were let in by their
// instance label, which game servers carry too.
func checkNoGameServerPeer(t *testing.T, name string, p *networkingv1.NetworkPolicy) {
	t.Helper()
	game := labels.Set{"app.kubernetes.io/name": "quickmatch", "app.kubernetes.io/instance": "qm", "app.kubernetes.io/component": "game"}
	for _, rule := range p.Spec.Ingress {
		for _, peer := range rule.From {
			if peer.PodSelector == nil || peer.NamespaceSelector != nil {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
			if err != nil {
				t.Errorf("%s: %v", name, err)
			} else if sel.Matches(game) {
				t.Errorf("%s: ports %v open to game servers (%s)", name, rule.Ports, sel)
			}
		}
	}
}

func secondsOf(t *testing.T, d string) int {
	t.Helper()
	if d == "" {
		return 0
	}
	var n int
	if _, err := fmt.Sscanf(d, "%ds", &n); err != nil {
		t.Errorf("duration %q: %v", d, err)
	}
	return n
}

// Mistakes in values are refused with a message that names them.
func TestChartRefusesBadValues(t *testing.T) {
	ch := deploytest.Load(t)
	base := deploytest.ValueSets()[0]
	joinPrivate, joinPublic := deploytest.JoinKeys()
	for _, tt := range []struct {
		name string
		set  map[string]any
		want string
	}{
		{"no join private key", map[string]any{"joinKeys": map[string]any{"privateKey": map[string]any{"value": ""}}}, "joinKeys.privateKey: set existingSecret (a Secret with key join.key) or value"},
		{"no join public keys", map[string]any{"joinKeys": map[string]any{"publicKeys": map[string]any{"values": []any{}}}}, "joinKeys.publicKeys: set existingConfigMap (every key a PEM file of public keys) or values"},
		{"a public key as the private key", map[string]any{"joinKeys": map[string]any{"privateKey": map[string]any{"value": joinPublic}}}, schemaPattern("/joinKeys/privateKey/value", joinPublic)},
		{"a private key among the public keys", map[string]any{"joinKeys": map[string]any{"publicKeys": map[string]any{"values": []any{joinPrivate}}}}, schemaPattern("/joinKeys/publicKeys/values/0", joinPrivate)},
		{"the old HMAC secret", map[string]any{"joinSecret": map[string]any{"value": "00112233445566778899aabbccddeeff"}}, "at '': additional properties 'joinSecret' not allowed"},
		{"misspelled key", map[string]any{"frontend": map[string]any{"replica": 3}}, "at '/frontend': additional properties 'replica' not allowed"},
		{"unknown policy", map[string]any{"gameServers": map[string]any{"autoscaler": map[string]any{"policy": "Magic"}}}, "at '/gameServers/autoscaler/policy': value must be one of 'Buffer', 'List', 'Webhook', 'Counter'"},
		{"bad auth type", map[string]any{"nats": map[string]any{"auth": map[string]any{"type": "token"}}}, "at '/nats/auth/type': value must be one of 'none', 'password', 'creds'"},
		{"kube backend without game servers", map[string]any{"gameServers": map[string]any{"enabled": false}}, "allocator.backend is kube but there are no game servers: enable gameServers or list allocator.clusters"},
		{"kube backend with a short shutdown grace", map[string]any{"allocator": map[string]any{"shutdownGraceSeconds": 14}}, "allocator.shutdownGraceSeconds 14: the kube backend needs at least 15"},
		{"local backend without servers", map[string]any{"allocator": map[string]any{"backend": "local"}}, "allocator.backend is local: set allocator.localGameServers"},
		// Its volume is kubeconfig-<name>, a name Kubernetes holds to 63.
		{"a cluster name too long for its volume", map[string]any{"allocator": map[string]any{"clusters": []any{map[string]any{"name": strings.Repeat("c", 53), "region": "us", "namespace": "games", "fleet": "rps", "kubeconfigSecret": "k"}}}}, "at '/allocator/clusters/0/name': maxLength: got 53, want 52"},
		{"a refill that is not a duration", map[string]any{"allocator": map[string]any{"backfillRefill": "hourly"}}, schemaPattern("/allocator/backfillRefill", "hourly")},
		// What Agones' FleetAutoscaler validation refuses (ValidateListPolicy,
		// ValidateBufferPolicy) is refused at render, not left to fail at install.
		{"list bufferSize above minCapacity", listPolicy(50, 40, 2000), "gameServers.autoscaler.list.minCapacity 40 is below gameServers.autoscaler.list.bufferSize 50: Agones refuses it"},
		{"list minCapacity above maxCapacity", listPolicy(20, 3000, 2000), "gameServers.autoscaler.list.minCapacity 3000 is above gameServers.autoscaler.list.maxCapacity 2000: Agones refuses it"},
		{"list bufferSize above maxCapacity", listPolicy(3000, 0, 2000), "gameServers.autoscaler.list.bufferSize 3000 is above gameServers.autoscaler.list.maxCapacity 2000: Agones refuses it"},
		{"list bufferSize 0", listPolicy(0, 40, 2000), "gameServers.autoscaler.list.bufferSize 0: Agones wants it above 0"},
		{"list percentage with minCapacity 0", listPolicy("20%", 0, 2000), "gameServers.autoscaler.list.minCapacity 0: with a percentage bufferSize Agones wants it at least 1"},
		{"list percentage of 100", listPolicy("100%", 40, 2000), `gameServers.autoscaler.list.bufferSize "100%": Agones takes a percentage from 1% to 99%`},
		{"list bufferSize neither number nor percentage", listPolicy("lots", 40, 2000), `gameServers.autoscaler.list.bufferSize "lots": want a number, or a percentage such as "10%"`},
		{"buffer minReplicas above maxReplicas", buffer(2, 60, 50), "gameServers.autoscaler.buffer.minReplicas 60 is above gameServers.autoscaler.buffer.maxReplicas 50: Agones refuses it"},
		{"buffer bufferSize above maxReplicas", buffer(60, 0, 50), "gameServers.autoscaler.buffer.bufferSize 60 is above gameServers.autoscaler.buffer.maxReplicas 50: Agones refuses it"},
		{"buffer bufferSize above minReplicas", buffer(5, 2, 50), "gameServers.autoscaler.buffer.minReplicas 2 is below gameServers.autoscaler.buffer.bufferSize 5: Agones refuses it"},
		{"buffer percentage with minReplicas 0", buffer("10%", 0, 50), "gameServers.autoscaler.buffer.minReplicas 0: with a percentage bufferSize Agones wants it at least 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			merged := base.With(t, tt.set)
			_, _, _, err := deploytest.Render(ch, "quickmatch", merged)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// schemaPattern is the schema's refusal of value at path (a JSON
// pointer) for not matching the pattern there; the schema quotes the
// value with its newlines escaped.
func schemaPattern(path, value string) string {
	return fmt.Sprintf("at '%s': '%s' does not match pattern", path, strings.ReplaceAll(value, "\n", `\n`))
}

// listPolicy and buffer are values choosing that autoscaler policy with
// these settings.
func listPolicy(size any, minCapacity, maxCapacity int) map[string]any {
	return autoscaler("List", "list", map[string]any{"bufferSize": size, "minCapacity": minCapacity, "maxCapacity": maxCapacity})
}

func buffer(size any, minReplicas, maxReplicas int) map[string]any {
	return autoscaler("Buffer", "buffer", map[string]any{"bufferSize": size, "minReplicas": minReplicas, "maxReplicas": maxReplicas})
}

func autoscaler(policy, key string, settings map[string]any) map[string]any {
	return map[string]any{"gameServers": map[string]any{"autoscaler": map[string]any{"policy": policy, key: settings}}}
}

// What Agones accepts still renders: a percentage buffer with a minimum,
// a minimum of 0 (which Agones reads as "bufferSize"), a buffer equal to
// its bounds.
func TestChartRendersAutoscalersAgonesAccepts(t *testing.T) {
	ch := deploytest.Load(t)
	base := deploytest.ValueSets()[0]
	for name, set := range map[string]map[string]any{
		"list percentage":   listPolicy("10%", 40, 2000),
		"list no minimum":   listPolicy(20, 0, 2000),
		"list at bounds":    listPolicy(40, 40, 40),
		"buffer percentage": buffer("50%", 1, 50),
		"buffer no minimum": buffer(2, 0, 50),
		"buffer at bounds":  buffer(5, 5, 5),
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, _, err := deploytest.Render(ch, "quickmatch", base.With(t, set)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// checkSpread: a service's pods spread over nodes where the scheduler
// can (a drain or a lost node took most of a component), the constraint
// selecting the Deployment's own pods.
func checkSpread(t *testing.T, name string, d *appsv1.Deployment) {
	t.Helper()
	keys := map[string]bool{}
	for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) || c.WhenUnsatisfiable != corev1.ScheduleAnyway {
			t.Errorf("%s: spread over %s does not select its pods softly: %+v", name, c.TopologyKey, c)
		}
		keys[c.TopologyKey] = true
	}
	// Nodes alone: a node without a constraint's key (a zone label on
	// kind or bare metal) is scored as none, spreading nothing.
	if len(keys) != 1 || !keys["kubernetes.io/hostname"] {
		t.Errorf("%s: spread over %v, want nodes", name, keys)
	}
}
