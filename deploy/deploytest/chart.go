// Package deploytest renders the quickmatch chart and splits what it
// renders into objects, for the tests of the deploy module.
package deploytest

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"sigs.k8s.io/yaml"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// Root is the repository root (the directory of go.work).
func Root(tb testing.TB) string {
	tb.Helper()
	root, err := testkit.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// ChartDir is deploy/helm/quickmatch.
func ChartDir(tb testing.TB) string { return filepath.Join(Root(tb), "deploy", "helm", "quickmatch") }

// Load loads the chart.
func Load(tb testing.TB) *chart.Chart {
	tb.Helper()
	ch, err := loader.Load(ChartDir(tb))
	if err != nil {
		tb.Fatalf("load chart: %v", err)
	}
	return ch
}

// ValueSet is one way users install the chart: example files merged in
// order, then Set on top.
type ValueSet struct {
	Name  string
	Files []string // relative to deploy/helm
	Set   map[string]any
}

// Values merges the set's files and overrides.
func (v ValueSet) Values(tb testing.TB) map[string]any {
	tb.Helper()
	out := map[string]any{}
	for _, f := range v.Files {
		vals, err := chartutil.ReadValuesFile(filepath.Join(Root(tb), "deploy", "helm", f))
		if err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		out = chartutil.CoalesceTables(vals.AsMap(), out)
	}
	return chartutil.CoalesceTables(deepCopy(v.Set), out)
}

// With is the set's values with over merged on top (over wins).
func (v ValueSet) With(tb testing.TB, over map[string]any) map[string]any {
	tb.Helper()
	return chartutil.CoalesceTables(deepCopy(over), v.Values(tb))
}

func deepCopy(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = deepCopy(sub)
		}
		out[k] = v
	}
	return out
}

// Object is one rendered manifest.
type Object struct {
	Source     string // template file
	APIVersion string
	Kind       string
	Name       string
	YAML       []byte
}

func (o Object) String() string { return fmt.Sprintf("%s %s (%s)", o.Kind, o.Name, o.Source) }

// Render renders the chart the way `helm install --dry-run` does (with
// the chart's schema checked), as release "qm" in namespace ns, and
// returns the objects and the test hooks.
func Render(ch *chart.Chart, ns string, vals map[string]any) (objects, hooks []Object, notes string, err error) {
	inst := action.NewInstall(&action.Configuration{})
	inst.DryRun, inst.ClientOnly, inst.Replace = true, true, true
	inst.ReleaseName, inst.Namespace = "qm", ns
	inst.KubeVersion = &chartutil.KubeVersion{Version: "v1.36.3", Major: "1", Minor: "36"}
	rel, err := inst.Run(ch, vals)
	if err != nil {
		return nil, nil, "", err
	}
	objects, err = Split(rel.Manifest)
	if err != nil {
		return nil, nil, "", err
	}
	for _, h := range rel.Hooks {
		hs, err := Split("# Source: " + h.Path + "\n" + h.Manifest)
		if err != nil {
			return nil, nil, "", err
		}
		hooks = append(hooks, hs...)
	}
	return objects, hooks, rel.Info.Notes, nil
}

// Split cuts a multi-document manifest into objects.
func Split(manifest string) ([]Object, error) {
	var out []Object
	source := ""
	for _, doc := range strings.Split(manifest, "\n---") {
		for _, line := range strings.Split(doc, "\n") {
			if s, ok := strings.CutPrefix(line, "# Source: "); ok {
				source = s
			}
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if head.Kind == "" {
			if len(bytes.TrimSpace(stripComments(doc))) > 0 {
				return nil, fmt.Errorf("%s: a document without kind", source)
			}
			continue
		}
		out = append(out, Object{Source: source, APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, YAML: []byte(doc)})
	}
	return out, nil
}

func stripComments(doc string) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.Bytes()
}

// ValueSets are the layouts the tests install: the defaults (one
// cluster), the three examples, and variants of the choices the values
// offer.
func ValueSets() []ValueSet {
	join := JoinKeyValues()
	// Every layout with a frontend names an identity provider (the chart
	// refuses one without).
	join["frontend"] = map[string]any{"auth": map[string]any{"jwksURL": "https://id.example.com/.well-known/jwks.json", "issuer": "https://id.example.com"}}
	with := func(extra map[string]any) map[string]any {
		out := deepCopy(join)
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	return []ValueSet{
		{Name: "defaults", Set: join},
		{Name: "single-cluster", Files: []string{"examples/single-cluster.yaml"}},
		{Name: "control-cluster", Files: []string{"examples/control-cluster.yaml"}},
		{Name: "game-cluster", Files: []string{"examples/game-cluster.yaml"}},
		{Name: "buffer-autoscaler-no-netpol", Set: with(map[string]any{
			"gameServers":   map[string]any{"autoscaler": map[string]any{"policy": "Buffer"}},
			"networkPolicy": map[string]any{"enabled": false},
			"matcher":       map[string]any{"autoscaling": map[string]any{"enabled": false}},
			"frontend": map[string]any{"auth": join["frontend"].(map[string]any)["auth"],
				"autoscaling": map[string]any{"enabled": true, "minReplicas": 3, "maxReplicas": 30, "targetCPUUtilizationPercentage": 60}},
			"rules": `{"attributes":{"platform":{"kind":"string","values":["pc","console"]}},"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"2m","rules":[{"kind":"equal","attribute":"platform","drop_after":"1m"}]}]}`,
		})},
		// Fleets per region and per set of modes, a fleet of another
		// cluster, a region label of the user's, and per-fleet settings.
		{Name: "fleets-per-region-and-mode", Set: with(map[string]any{
			"regions":  []any{"eu", "us"},
			"frontend": map[string]any{"auth": join["frontend"].(map[string]any)["auth"], "pdb": map[string]any{"maxUnavailable": 0}},
			"gameServers": map[string]any{
				"regionLabel": "example.com/zone",
				// Node upgrades may evict the duels (a game of minutes);
				// the teams' servers run to completion.
				"eviction": "OnUpgrade",
				"fleets": []any{
					map[string]any{"name": "duels-eu", "region": "eu", "modes": []any{"1v1"}, "roomsPerServer": 100, "seatsPerRoom": 2},
					map[string]any{"name": "teams-us", "region": "us", "modes": []any{"2v2", "5v5"}, "replicas": 0, "scheduling": "Distributed", "eviction": "Never",
						"autoscaler": map[string]any{"policy": "Buffer", "buffer": map[string]any{"bufferSize": 1, "minReplicas": 0, "maxReplicas": 10}}},
				},
			},
			"allocator": map[string]any{"clusters": []any{
				map[string]any{"name": "far-us", "region": "us", "namespace": "games", "fleet": "rps", "modes": []any{"ffa"}, "kubeconfigSecret": "far-us-kubeconfig"},
			}},
		})},
		// The frontend behind an Ingress of the cluster's default class,
		// on a NodePort Service (GKE without NEGs, an ALB in instance
		// mode), a wildcard host among its hosts.
		{Name: "ingress-nodeport", Set: with(map[string]any{
			"frontend": map[string]any{"auth": join["frontend"].(map[string]any)["auth"],
				"service": map[string]any{"type": "NodePort"},
				"ingress": map[string]any{"enabled": true, "hosts": []any{"*.play.example.com", "play.example.com"},
					"tls": []any{map[string]any{"secretName": "play-tls", "hosts": []any{"*.play.example.com", "play.example.com"}}}}},
		})},
		{Name: "local-backend-tls-mtls", Set: with(map[string]any{
			"allocator":   map[string]any{"backend": "local", "localGameServers": "gs-1=203.0.113.7:7000"},
			"gameServers": map[string]any{"enabled": false},
			"nats":        map[string]any{"tls": map[string]any{"enabled": true, "clientCert": true}, "auth": map[string]any{"type": "password"}},
		})},
	}
}
