package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
	"github.com/quickmatch-dev/quickmatch/pkg/agones"
)

// rendered is what a value set gives the fleets, the allocator and the
// frontend.
type rendered struct {
	fleets      map[string]*deploytest.Fleet
	autoscalers map[string]*agones.FleetAutoscaler
	clusters    []clusterEntry
	allocator   map[string]string // env
	frontend    map[string]string // env
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
				r.frontend = envOf(v.Spec.Template.Spec)
			}
		case *corev1.ConfigMap:
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
		min, max, buffr int64 // List policy settings, in rooms
	}
	for _, tt := range []struct {
		set      string
		label    string
		fleets   map[string]fleet
		clusters []clusterEntry
	}{
		{"defaults", agones.RegionLabel,
			map[string]fleet{"rps": {"eu", 20, 200, 2, "List", 40, 2000, 20}},
			[]clusterEntry{{Name: "local-rps", Namespace: "quickmatch", Fleet: "rps", Region: "eu", Modes: []string{}, Weight: 1}}},
		// Two fleets in one region: each keeps its own free rooms (List);
		// the Webhook policy sizes one fleet per region.
		{"single-cluster", agones.RegionLabel,
			map[string]fleet{
				"rps":       {"eu", 50, 100, 4, "List", 100, 5000, 50},
				"rps-teams": {"eu", 20, 200, 4, "List", 40, 2000, 20},
			},
			[]clusterEntry{
				{Name: "local-rps", Namespace: "quickmatch", Fleet: "rps", Region: "eu", Modes: []string{"1v1"}, Weight: 1},
				{Name: "local-rps-teams", Namespace: "quickmatch", Fleet: "rps-teams", Region: "eu", Modes: []string{"2v2", "5v5", "ffa"}, Weight: 1},
			}},
		{"fleets-per-region-and-mode", "example.com/zone",
			map[string]fleet{
				"duels-eu": {"eu", 100, 200, 2, "List", 40, 2000, 20},
				"teams-us": {"us", 20, 200, 0, "Buffer", 0, 0, 0},
			},
			[]clusterEntry{
				{Name: "local-duels-eu", Namespace: "quickmatch", Fleet: "duels-eu", Region: "eu", Modes: []string{"1v1"}, Weight: 1},
				{Name: "local-teams-us", Namespace: "quickmatch", Fleet: "teams-us", Region: "us", Modes: []string{"2v2", "5v5"}, Weight: 1},
				{Name: "far-us", Kubeconfig: "/etc/quickmatch/kubeconfigs/far-us/kubeconfig", Namespace: "games", Fleet: "rps", Region: "us", Modes: []string{"ffa"}, Weight: 1},
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
				got := fleet{f.Labels[tt.label], *lists[agones.ListRooms].Capacity, *lists[agones.ListPlayers].Capacity, f.Spec.Replicas, as.Spec.Policy.Type, 0, 0, 0}
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

// The frontend takes the modes some fleet hosts, and parties up to their
// largest team: a mode no fleet hosts is refused at the frontend instead
// of waiting for a server that never comes. A release without the kube
// allocator does not know its fleets: every mode.
func TestChartFrontendTakesHostedModes(t *testing.T) {
	base := deploytest.ValueSets()[0]
	custom := `[{"name":"1v1","teams":2,"team_size":1},{"name":"3v3","teams":2,"team_size":3}]`
	for _, tt := range []struct {
		name         string
		set          map[string]any
		modes, party string
	}{
		{"one fleet, every mode", nil, "1v1,2v2,5v5,ffa", "5"},
		{"duels only", fleets(map[string]any{"name": "rps", "modes": []any{"1v1"}, "seatsPerRoom": 2}), "1v1", "1"},
		{"duels here, 2v2 in another cluster", with(fleets(map[string]any{"name": "rps", "modes": []any{"1v1"}}),
			"allocator", map[string]any{"clusters": []any{cluster("far", "us", "2v2")}}), "1v1,2v2", "2"},
		{"another cluster hosts every mode", with(fleets(map[string]any{"name": "rps", "modes": []any{"1v1"}}),
			"allocator", map[string]any{"clusters": []any{cluster("far", "us")}}), "1v1,2v2,5v5,ffa", "5"},
		{"the matcher's own modes", with(fleets(map[string]any{"name": "rps", "modes": []any{"3v3"}, "seatsPerRoom": 6}),
			"matcher", map[string]any{"modes": custom}), "3v3", "3"},
		{"local backend", map[string]any{"allocator": map[string]any{"backend": "local", "localGameServers": "gs-1=203.0.113.7:7000"},
			"gameServers": map[string]any{"enabled": false}}, "1v1,2v2,5v5,ffa", "5"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, base.With(t, tt.set))
			if r.frontend["MODES"] != tt.modes || r.frontend["MAX_PARTY"] != tt.party {
				t.Errorf("MODES %q, MAX_PARTY %q; want %q, %q", r.frontend["MODES"], r.frontend["MAX_PARTY"], tt.modes, tt.party)
			}
		})
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

// with adds key: value to the values m.
func with(m map[string]any, key string, value any) map[string]any {
	m[key] = value
	return m
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

// The chart's built-in modes are the matcher's (services/matcher/internal
// /modes, Defaults): fleets are checked and the frontend configured from
// them when matcher.modes is empty.
func TestChartBuiltinModesAreTheMatchers(t *testing.T) {
	root := deploytest.Root(t)
	src, err := os.ReadFile(filepath.Join(root, "services", "matcher", "internal", "modes", "modes.go"))
	if err != nil {
		t.Fatal(err)
	}
	type mode struct {
		Name     string `json:"name"`
		Teams    int    `json:"teams"`
		TeamSize int    `json:"team_size"`
	}
	var matcher []mode
	for _, m := range regexp.MustCompile(`mk\("([^"]+)", (\d+), (\d+),`).FindAllStringSubmatch(string(src), -1) {
		teams, _ := strconv.Atoi(m[2])
		size, _ := strconv.Atoi(m[3])
		matcher = append(matcher, mode{m[1], teams, size})
	}
	tpl, err := os.ReadFile(filepath.Join(deploytest.ChartDir(t), "templates", "_fleets.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	var chart []mode
	if err := json.Unmarshal(regexp.MustCompile(`(?m)^\[\{"name".*\]$`).Find(tpl), &chart); err != nil {
		t.Fatalf("the chart's built-in modes: %v", err)
	}
	if len(matcher) == 0 || !bytes.Equal(mustJSON(t, matcher), mustJSON(t, chart)) {
		t.Errorf("the chart's built-in modes %+v, the matcher's %+v", chart, matcher)
	}
}
