package deploy

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
)

// otlpVar is the SDK's standard variable that turns tracing on
// (pkg/tracing); off when unset or empty.
const otlpVar = "OTEL_EXPORTER_OTLP_ENDPOINT"

// TestChartTracing: off by default (no OTEL variable anywhere); with
// tracing.otlpEndpoint, every service and every game server exports
// there, with the extra SDK variables of tracing.env.
func TestChartTracing(t *testing.T) {
	base := deploytest.ValueSets()[0]
	const endpoint = "http://otel-collector.observability:4318"
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"off by default", base.Values(t), ""},
		{"on", base.With(t, map[string]any{"tracing": map[string]any{
			"otlpEndpoint": endpoint,
			"env":          []any{map[string]any{"name": "OTEL_TRACES_SAMPLER", "value": "parentbased_traceidratio"}},
		}}), endpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objects, _, _, err := deploytest.Render(deploytest.Load(t), "quickmatch", tc.vals)
			if err != nil {
				t.Fatal(err)
			}
			pods := map[string]corev1.PodSpec{}
			for _, o := range objects {
				v, err := deploytest.Typed(o)
				if err != nil {
					t.Fatal(err)
				}
				switch v := v.(type) {
				case *deploytest.Fleet:
					pods["fleet "+v.Name] = v.Spec.Template.Spec.Template.Spec
				case *appsv1.Deployment:
					pods["deployment "+v.Name] = v.Spec.Template.Spec
				}
			}
			if len(pods) != 4 {
				t.Fatalf("%d pods (%v), want the frontend, matcher and allocator deployments and the fleet", len(pods), pods)
			}
			for name, pod := range pods {
				env := map[string]string{}
				for _, e := range pod.Containers[0].Env {
					env[e.Name] = e.Value
				}
				got, set := env[otlpVar]
				if tc.want == "" && set || got != tc.want {
					t.Errorf("%s: %s = %q (set %v), want %q", name, otlpVar, got, set, tc.want)
				}
				if tc.want != "" && env["OTEL_TRACES_SAMPLER"] != "parentbased_traceidratio" {
					t.Errorf("%s: tracing.env not passed on: %v", name, env)
				}
			}
		})
	}
}

// TestChartRefusesBadTracing: the schema takes an http(s) URL and only
// OTEL_ variables, and the chart refuses tracing.env without
// tracing.otlpEndpoint.
func TestChartRefusesBadTracing(t *testing.T) {
	base := deploytest.ValueSets()[0]
	for name, tr := range map[string]map[string]any{
		"not a URL":     {"otlpEndpoint": "otel:4318"},
		"not OTEL":      {"env": []any{map[string]any{"name": "NATS_URL", "value": "nats://x"}}},
		"unknown value": {"endpoint": "http://otel:4318"},
		// It would be dropped, tracing left off without a word.
		"env without otlpEndpoint": {"env": []any{map[string]any{"name": "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "value": "http://otel:4318/v1/traces"}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, _, err := deploytest.Render(deploytest.Load(t), "quickmatch", base.With(t, map[string]any{"tracing": tr})); err == nil {
				t.Fatalf("tracing %v rendered", tr)
			}
		})
	}
}

// TestComposeTracing: docker-compose.yml leaves tracing off unless
// QUICKMATCH_OTLP_ENDPOINT is set, then gives it to every service and
// game server.
func TestComposeTracing(t *testing.T) {
	services := []string{"frontend", "matcher-1", "matcher-2", "allocator", "game-1", "game-2"}
	for _, tc := range []struct{ name, endpoint string }{{"off by default", ""}, {"on", "http://collector:4318"}} {
		t.Run(tc.name, func(t *testing.T) {
			env := composePasswords()
			if tc.endpoint != "" {
				env = append(env, "QUICKMATCH_OTLP_ENDPOINT="+tc.endpoint)
			}
			p, err := loadComposeEnv(t, env)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range services {
				s, err := p.GetService(name)
				if err != nil {
					t.Fatal(err)
				}
				v := s.Environment[otlpVar]
				if v == nil || *v != tc.endpoint {
					t.Errorf("%s: %s = %v, want %q", name, otlpVar, v, tc.endpoint)
				}
			}
		})
	}
}
