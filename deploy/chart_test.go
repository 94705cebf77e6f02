package deploy

import (
	"fmt"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
	"github.com/quickmatch-dev/quickmatch/pkg/agones"
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
			objects, hooks, notes, err := deploytest.Render(ch, "quickmatch", vs.Values(t))
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			if len(objects) == 0 || !strings.Contains(notes, "helm test qm") {
				t.Fatalf("%d objects; notes:\n%s", len(objects), notes)
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
				case *deploytest.Fleet:
					checkFleet(t, v, env)
				case *agones.FleetAutoscaler:
					if v.Spec.FleetName == "" || v.Spec.Policy.Type == "" {
						t.Errorf("%s: %+v", o, v.Spec)
					}
				case *corev1.Pod:
					if len(v.Spec.Containers) != 1 || v.Spec.Containers[0].Args[0] != "probe" {
						t.Errorf("%s: test pod does not run the probe: %+v", o, v.Spec.Containers)
					}
				}
			}
			t.Logf("%s: %v", vs.Name, kinds)
			switch vs.Name {
			case "defaults":
				want := map[string]int{"Deployment": 3, "Fleet": 1, "FleetAutoscaler": 1, "HorizontalPodAutoscaler": 1, "Role": 1, "RoleBinding": 1, "NetworkPolicy": 3, "PodDisruptionBudget": 3, "Secret": 1, "Pod": 2}
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

func checkFleet(t *testing.T, f *deploytest.Fleet, env map[string]map[string]bool) {
	t.Helper()
	gs := f.Spec.Template.Spec
	rooms := gs.Counters[agones.CounterRooms]
	if rooms.Capacity == nil || gs.Lists[agones.ListPlayers].Capacity == nil {
		t.Fatalf("fleet %s: no rooms counter or players list: %+v", f.Name, gs)
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
	if gs.Ports[0].ContainerPort != 7000 {
		t.Errorf("fleet: port %+v", gs.Ports)
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
		{"no join private key", map[string]any{"joinKeys": map[string]any{"privateKey": map[string]any{"value": ""}}}, "joinKeys.privateKey"},
		{"no join public keys", map[string]any{"joinKeys": map[string]any{"publicKeys": map[string]any{"values": []any{}}}}, "joinKeys.publicKeys"},
		{"a public key as the private key", map[string]any{"joinKeys": map[string]any{"privateKey": map[string]any{"value": joinPublic}}}, "privateKey"},
		{"a private key among the public keys", map[string]any{"joinKeys": map[string]any{"publicKeys": map[string]any{"values": []any{joinPrivate}}}}, "publicKeys"},
		{"the old HMAC secret", map[string]any{"joinSecret": map[string]any{"value": "00112233445566778899aabbccddeeff"}}, "joinSecret"},
		{"misspelled key", map[string]any{"frontend": map[string]any{"replica": 3}}, "replica"},
		{"unknown policy", map[string]any{"gameServers": map[string]any{"autoscaler": map[string]any{"policy": "Magic"}}}, "policy"},
		{"bad auth type", map[string]any{"nats": map[string]any{"auth": map[string]any{"type": "token"}}}, "type"},
		{"kube backend without game servers", map[string]any{"gameServers": map[string]any{"enabled": false}}, "no game servers"},
		{"local backend without servers", map[string]any{"allocator": map[string]any{"backend": "local"}}, "localGameServers"},
		// What Agones' FleetAutoscaler validation refuses (ValidateCounterPolicy,
		// ValidateBufferPolicy) is refused at render, not left to fail at install.
		{"counter bufferSize above minCapacity", counter(50, 40, 2000), "counter.minCapacity 40"},
		{"counter minCapacity above maxCapacity", counter(20, 3000, 2000), "counter.minCapacity 3000"},
		{"counter bufferSize above maxCapacity", counter(3000, 0, 2000), "counter.bufferSize 3000"},
		{"counter bufferSize 0", counter(0, 40, 2000), "counter.bufferSize 0"},
		{"counter percentage with minCapacity 0", counter("20%", 0, 2000), "counter.minCapacity 0"},
		{"counter percentage of 100", counter("100%", 40, 2000), `counter.bufferSize "100%"`},
		{"counter bufferSize neither number nor percentage", counter("lots", 40, 2000), `counter.bufferSize "lots"`},
		{"buffer minReplicas above maxReplicas", buffer(2, 60, 50), "buffer.minReplicas 60"},
		{"buffer bufferSize above maxReplicas", buffer(60, 0, 50), "buffer.bufferSize 60"},
		{"buffer bufferSize above minReplicas", buffer(5, 2, 50), "buffer.minReplicas 2"},
		{"buffer percentage with minReplicas 0", buffer("10%", 0, 50), "buffer.minReplicas 0"},
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

// counter and buffer are values choosing that autoscaler policy with these
// settings.
func counter(size any, minCapacity, maxCapacity int) map[string]any {
	return autoscaler("Counter", "counter", map[string]any{"bufferSize": size, "minCapacity": minCapacity, "maxCapacity": maxCapacity})
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
		"counter percentage": counter("10%", 40, 2000),
		"counter no minimum": counter(20, 0, 2000),
		"counter at bounds":  counter(40, 40, 40),
		"buffer percentage":  buffer("50%", 1, 50),
		"buffer no minimum":  buffer(2, 0, 50),
		"buffer at bounds":   buffer(5, 5, 5),
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, _, err := deploytest.Render(ch, "quickmatch", base.With(t, set)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
