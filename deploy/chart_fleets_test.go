package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// rendered is what a value set gives the fleets, the allocator and the
// frontend.
type rendered struct {
	fleets      map[string]*deploytest.Fleet
	autoscalers map[string]*agones.FleetAutoscaler
	clusters    []clusterEntry
	allocator   map[string]string // env
	frontend    map[string]string // env
	matcher     map[string]string // env
	// rules is the rules ConfigMap's rules.json, "" without one.
	rules                         string
	frontendDeploy, matcherDeploy *appsv1.Deployment
	// sealKeys and matchSealKeys are the seal keys Secrets the chart
	// made, nil if none.
	sealKeys, matchSealKeys *corev1.Secret
}

// clusterEntry is one entry of the allocator's clusters file, as the
// allocator reads it (services/allocator/internal/kube, the names agreed
// with it: modes absent or empty hosts every mode).
type clusterEntry struct {
	Name       string   `json:"name"`
	Kubeconfig string   `json:"kubeconfig"`
	Context    string   `json:"context"`
	Namespace  string   `json:"namespace"`
	Fleet      string   `json:"fleet"`
	Region     string   `json:"region"`
	Modes      []string `json:"modes"`
	Priority   int      `json:"priority"`
	Weight     int      `json:"weight"`
	Scheduling string   `json:"scheduling"`
}

func render(t *testing.T, vals map[string]any) rendered {
	t.Helper()
	objects, _, _, err := deploytest.Render(deploytest.Load(t), "quickmatch", vals)
	if err != nil {
		t.Fatal(err)
	}
	r := rendered{fleets: map[string]*deploytest.Fleet{}, autoscalers: map[string]*agones.FleetAutoscaler{}}
	envOf := func(pod corev1.PodSpec) map[string]string {
		env := map[string]string{}
		for _, e := range pod.Containers[0].Env {
			env[e.Name] = e.Value
		}
		return env
	}
	for _, o := range objects {
		v, err := deploytest.Typed(o)
		if err != nil {
			t.Fatal(err)
		}
		switch v := v.(type) {
		case *deploytest.Fleet:
			r.fleets[v.Name] = v
		case *agones.FleetAutoscaler:
			r.autoscalers[v.ObjectMeta.Name] = v
		case *appsv1.Deployment:
			switch v.Name {
			case "qm-allocator":
				r.allocator = envOf(v.Spec.Template.Spec)
			case "qm-frontend":
				r.frontend, r.frontendDeploy = envOf(v.Spec.Template.Spec), v
			case "qm-matcher":
				r.matcher, r.matcherDeploy = envOf(v.Spec.Template.Spec), v
			}
		case *corev1.Secret:
			switch v.Name {
			case "qm-seal-keys":
				r.sealKeys = v
			case "qm-match-seal-keys":
				r.matchSealKeys = v
			}
		case *corev1.ConfigMap:
			if v.Name == "qm-rules" {
				r.rules = v.Data["rules.json"]
			}
			if v.Name == "qm-allocator-clusters" {
				dec := json.NewDecoder(bytes.NewReader([]byte(v.Data["clusters.json"])))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&r.clusters); err != nil {
					t.Fatalf("clusters.json: %v", err)
				}
			}
		}
	}
	return r
}

func valueSet(t *testing.T, name string) deploytest.ValueSet {
	t.Helper()
	for _, vs := range deploytest.ValueSets() {
		if vs.Name == name {
			return vs
		}
	}
	t.Fatalf("no value set %q", name)
	return deploytest.ValueSet{}
}

// Each fleet carries its region in the label the webhook reads, its
// rooms and players Lists sized from roomsPerServer and seatsPerRoom, and
// its own FleetAutoscaler; the allocator gets every fleet (this
// cluster's and allocator.clusters) with its region and modes, and the
// label to read. The defaults are the single fleet there was before.
func TestChartFleetsCarryRegionsAndModes(t *testing.T) {
	type fleet struct {
		region          string
		rooms, players  int64
		replicas        int32
		policy          string
		min, max, buffr int64  // List policy settings, in rooms
		eviction        string // "": none rendered (Agones' default)
	}
	for _, tt := range []struct {
		set      string
		label    string
		fleets   map[string]fleet
		clusters []clusterEntry
	}{
		{"defaults", agones.RegionLabel,
			map[string]fleet{"rps": {"eu", 20, 200, 2, "List", 40, 2000, 20, ""}},
			[]clusterEntry{{Name: "local-rps", Namespace: "quickmatch", Fleet: "rps", Region: "eu", Modes: []string{}, Weight: 1, Scheduling: "Packed"}}},
		// Two fleets in one region: each keeps its own free rooms (List);
		// the Webhook policy sizes one fleet per region.
		{"single-cluster", agones.RegionLabel,
			map[string]fleet{
				"rps":       {"eu", 50, 100, 4, "List", 100, 5000, 50, ""},
				"rps-teams": {"eu", 20, 200, 4, "List", 40, 2000, 20, ""},
			},
			[]clusterEntry{
				{Name: "local-rps", Namespace: "quickmatch", Fleet: "rps", Region: "eu", Modes: []string{"1v1"}, Weight: 1, Scheduling: "Packed"},
				{Name: "local-rps-teams", Namespace: "quickmatch", Fleet: "rps-teams", Region: "eu", Modes: []string{"2v2", "5v5", "ffa"}, Weight: 1, Scheduling: "Packed"},
			}},
		{"fleets-per-region-and-mode", "example.com/zone",
			map[string]fleet{
				"duels-eu": {"eu", 100, 200, 2, "List", 40, 2000, 20, "OnUpgrade"}, // gameServers.eviction
				"teams-us": {"us", 20, 200, 0, "Buffer", 0, 0, 0, "Never"},         // its own
			},
			[]clusterEntry{
				{Name: "local-duels-eu", Namespace: "quickmatch", Fleet: "duels-eu", Region: "eu", Modes: []string{"1v1"}, Weight: 1, Scheduling: "Packed"},
				{Name: "local-teams-us", Namespace: "quickmatch", Fleet: "teams-us", Region: "us", Modes: []string{"2v2", "5v5"}, Weight: 1, Scheduling: "Distributed"},
				{Name: "far-us", Kubeconfig: "/etc/quickmatch/kubeconfigs/far-us/kubeconfig", Namespace: "games", Fleet: "rps", Region: "us", Modes: []string{"ffa"}, Weight: 1, Scheduling: "Packed"},
			}},
	} {
		t.Run(tt.set, func(t *testing.T) {
			r := render(t, valueSet(t, tt.set).Values(t))
			if len(r.fleets) != len(tt.fleets) || len(r.autoscalers) != len(tt.fleets) {
				t.Fatalf("%d fleets and %d autoscalers, want %d", len(r.fleets), len(r.autoscalers), len(tt.fleets))
			}
			for name, want := range tt.fleets {
				f, as := r.fleets[name], r.autoscalers[name]
				if f == nil || as == nil || as.Spec.FleetName != name {
					t.Fatalf("fleet %s: %v, autoscaler %v", name, f, as)
				}
				lists := f.Spec.Template.Spec.Lists
				got := fleet{f.Labels[tt.label], *lists[agones.ListRooms].Capacity, *lists[agones.ListPlayers].Capacity, f.Spec.Replicas, as.Spec.Policy.Type, 0, 0, 0, ""}
				if e := f.Spec.Template.Spec.Eviction; e != nil {
					got.eviction = e.Safe
				}
				if l := as.Spec.Policy.List; l != nil {
					got.min, got.max, got.buffr = l.MinCapacity, l.MaxCapacity, l.BufferSize.Int
				}
				if got != want {
					t.Errorf("fleet %s: %+v, want %+v", name, got, want)
				}
			}
			if js, _ := json.Marshal(r.clusters); !bytes.Equal(js, mustJSON(t, tt.clusters)) {
				t.Errorf("clusters file:\n%s\nwant\n%s", js, mustJSON(t, tt.clusters))
			}
			if r.allocator["AUTOSCALE_REGION_LABEL"] != tt.label || r.allocator["AUTOSCALE_DEFAULT_REGION"] != "eu" ||
				r.allocator["KUBE_CLUSTERS_FILE"] == "" {
				t.Errorf("allocator env: %v", r.allocator)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// The rule set reaches the frontends and the matchers from one ConfigMap,
// as a file both read and reload (no checksum annotation restarts them);
// without one, neither gets the variable and both use the built-in rules.
func TestChartRulesReachFrontendAndMatcher(t *testing.T) {
	base := deploytest.ValueSets()[0]
	const file = `{"attributes":{"platform":{"kind":"string"}},"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"2m","rules":[{"kind":"equal","attribute":"platform"}]}]}`
	if _, err := rules.Parse([]byte(file)); err != nil {
		t.Fatalf("the test's rule set: %v", err)
	}
	r := render(t, base.With(t, map[string]any{"rules": file}))
	const path = "/etc/quickmatch/rules/rules.json"
	if r.frontend["RULES"] != path || r.matcher["RULES"] != path {
		t.Errorf("RULES: frontend %q, matcher %q; want %q", r.frontend["RULES"], r.matcher["RULES"], path)
	}
	if r.rules != file {
		t.Errorf("the rules ConfigMap holds %q, want %q", r.rules, file)
	}
	for _, d := range []*appsv1.Deployment{r.frontendDeploy, r.matcherDeploy} {
		for k := range d.Spec.Template.Annotations {
			if k != "checksum/seal-keys" && k != "checksum/match-seal-keys" && k != "checksum/auth-public-keys" {
				t.Errorf("%s: pod annotation %s may restart it on a rule change it reloads by itself", d.Name, k)
			}
		}
		var mounted bool
		for _, v := range d.Spec.Template.Spec.Volumes {
			mounted = mounted || v.ConfigMap != nil && v.ConfigMap.Name == "qm-rules"
		}
		if !mounted {
			t.Errorf("%s does not mount the rules ConfigMap", d.Name)
		}
	}
	r = render(t, base.Values(t))
	if _, set := r.frontend["RULES"]; set || r.rules != "" {
		t.Errorf("without rules: RULES %q, ConfigMap %q", r.frontend["RULES"], r.rules)
	}
}

// fleets is values listing these gameServers.fleets.
func fleets(entries ...map[string]any) map[string]any {
	var list []any
	for _, e := range entries {
		list = append(list, e)
	}
	return map[string]any{"gameServers": map[string]any{"fleets": list}}
}

// with adds key: value (and the pairs of more) to the values m.
func with(m map[string]any, key string, value any, more ...any) map[string]any {
	m[key] = value
	for i := 0; i+1 < len(more); i += 2 {
		m[more[i].(string)] = more[i+1]
	}
	return m
}

// ruleSet is a rule set of these built-in modes only (pkg/rules, Default).
func ruleSet(names ...string) string {
	set := rules.Default()
	var modes []map[string]any
	for _, name := range names {
		m, _ := set.Mode(name)
		modes = append(modes, map[string]any{"name": m.Name, "teams": m.Teams, "team_size": m.TeamSize, "max_wait": m.MaxWait})
	}
	js, _ := json.Marshal(map[string]any{"modes": modes})
	return string(js)
}

// cluster is an allocator.clusters entry hosting modes (none: every mode).
func cluster(name, region string, modes ...string) map[string]any {
	c := map[string]any{"name": name, "region": region, "namespace": "games", "fleet": "rps", "kubeconfigSecret": name + "-kubeconfig"}
	if modes != nil {
		var ms []any
		for _, m := range modes {
			ms = append(ms, m)
		}
		c["modes"] = ms
	}
	return c
}

// The chart's built-in modes are the built-in rule set's (pkg/rules,
// Default): fleets are checked against them when rules is empty.
func TestChartBuiltinModesAreTheRuleSets(t *testing.T) {
	type mode struct {
		Name     string `json:"name"`
		Teams    int    `json:"teams"`
		TeamSize int    `json:"team_size"`
	}
	var builtin []mode
	set := rules.Default()
	for _, name := range set.Modes() {
		m, _ := set.Mode(name)
		builtin = append(builtin, mode{m.Name, m.Teams, m.TeamSize})
	}
	tpl, err := os.ReadFile(filepath.Join(deploytest.ChartDir(t), "templates", "_fleets.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	var chart []mode
	if err := json.Unmarshal(regexp.MustCompile(`(?m)^\[\{"name".*\]$`).Find(tpl), &chart); err != nil {
		t.Fatalf("the chart's built-in modes: %v", err)
	}
	if len(builtin) == 0 || !bytes.Equal(mustJSON(t, builtin), mustJSON(t, chart)) {
		t.Errorf("the chart's built-in modes %+v, the rule set's %+v", chart, builtin)
	}
}
