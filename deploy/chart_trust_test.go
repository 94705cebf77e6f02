package deploy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
)

// natsCredentials says how a container logs in to NATS: the user's Secret
// (password), the credentials file (creds), or "" for no credentials.
func natsCredentials(c corev1.Container) string {
	for _, e := range c.Env {
		switch {
		case e.Name == "NATS_USER" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			return "secret " + e.ValueFrom.SecretKeyRef.Name
		case e.Name == "NATS_CREDS":
			return "creds " + e.Value
		}
	}
	return ""
}

// The chart's defaults authenticate to NATS: every service logs in as its
// own user of deploy/nats/nats.conf (the default was auth.type none, so
// any client reaching NATS could read results.>, which carries every
// player's join token).
func TestChartDefaultsAuthenticateNATS(t *testing.T) {
	vals, err := chartutil.ReadValuesFile(filepath.Join(deploytest.ChartDir(t), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if typ, _ := vals.PathValue("nats.auth.type"); typ == "none" {
		t.Errorf("values.yaml: nats.auth.type %v", typ)
	}
	objects, _, _, err := deploytest.Render(deploytest.Load(t), "quickmatch", deploytest.ValueSets()[0].Values(t))
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, o := range objects {
		if o.Kind != "Deployment" {
			continue
		}
		v, err := deploytest.Typed(o)
		if err != nil {
			t.Fatal(err)
		}
		c := v.(*appsv1.Deployment).Spec.Template.Spec.Containers[0]
		seen++
		if got := natsCredentials(c); got != "secret quickmatch-nats-"+c.Name {
			t.Errorf("%s logs in to NATS with %q", o, got)
		}
	}
	if seen != 3 {
		t.Errorf("%d Deployments", seen)
	}
}

// provisionJob is the rendered provisioning hook, or nil.
func provisionJob(t *testing.T, vals map[string]any) (*batchv1.Job, deploytest.Object) {
	t.Helper()
	objects, hooks, _, err := deploytest.Render(deploytest.Load(t), "quickmatch", vals)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range append(objects, hooks...) {
		if o.Kind == "Job" {
			v, err := deploytest.Typed(o)
			if err != nil {
				t.Fatal(err)
			}
			return v.(*batchv1.Job), o
		}
	}
	return nil, deploytest.Object{}
}

// Services create no streams: a Job run before install and every upgrade
// (a Helm hook) provisions them, as the provisioner user with its own
// Secret, with the matchers' shards; a game-server cluster, which does
// not talk to NATS, has none.
func TestChartProvisionsAsAHookJob(t *testing.T) {
	for _, vs := range deploytest.ValueSets() {
		t.Run(vs.Name, func(t *testing.T) {
			job, o := provisionJob(t, vs.Values(t))
			if vs.Name == "game-cluster" {
				if job != nil {
					t.Fatalf("a game-server cluster provisions NATS: %s", o)
				}
				return
			}
			if job == nil {
				t.Fatal("no provisioning Job")
			}
			hook := strings.Split(job.Annotations["helm.sh/hook"], ",")
			slices.Sort(hook)
			if !slices.Equal(hook, []string{"pre-install", "pre-upgrade"}) {
				t.Errorf("%s: hook %q", o, job.Annotations["helm.sh/hook"])
			}
			pod := job.Spec.Template.Spec
			c := pod.Containers[0]
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
			if env["PROVISION"] != "true" || !strings.Contains(c.Image, "/matcher:") || pod.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("%s: PROVISION %q, image %s, restart %s", o, env["PROVISION"], c.Image, pod.RestartPolicy)
			}
			want := "secret quickmatch-nats-provisioner"
			if vs.Name == "control-cluster" {
				want = "creds /etc/quickmatch/nats-creds/nats.creds"
			}
			if got := natsCredentials(c); got != want {
				t.Errorf("%s logs in with %q, want %q", o, got, want)
			}
			if env["REGIONS"] == "" || env["STREAM_REPLICAS"] == "" {
				t.Errorf("%s: regions %q, replicas %q", o, env["REGIONS"], env["STREAM_REPLICAS"])
			}
		})
	}
}

// The frontend's identity values reach it as its flags.
func TestChartFrontendIdentity(t *testing.T) {
	base := deploytest.ValueSets()[0]
	for _, tt := range []struct {
		name string
		auth map[string]any
		want map[string]string
	}{
		{"jwks", map[string]any{"jwksURL": "https://id.example.com/jwks.json", "issuer": "https://id.example.com", "audience": "quickmatch",
			"playerClaim": "uid", "serverScope": "mm:server", "ticketClaim": "qm"},
			map[string]string{"AUTH_JWKS_URL": "https://id.example.com/jwks.json", "AUTH_ISSUER": "https://id.example.com", "AUTH_AUDIENCE": "quickmatch",
				"AUTH_PLAYER_CLAIM": "uid", "AUTH_SERVER_SCOPE": "mm:server", "AUTH_TICKET_CLAIM": "qm"}},
		{"public keys", map[string]any{"jwksURL": "", "issuer": "studio", "publicKeys": []any{"-----BEGIN PUBLIC KEY-----\nA\n-----END PUBLIC KEY-----\n", "-----BEGIN PUBLIC KEY-----\nB\n-----END PUBLIC KEY-----\n"}},
			map[string]string{"AUTH_PUBLIC_KEYS": "/etc/quickmatch/auth/key-0.pem,/etc/quickmatch/auth/key-1.pem", "AUTH_ISSUER": "studio"}},
		{"insecure", map[string]any{"jwksURL": "", "issuer": "", "insecure": true}, map[string]string{"AUTH_INSECURE": "true"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			objects, _, _, err := deploytest.Render(deploytest.Load(t), "quickmatch", base.With(t, map[string]any{"frontend": map[string]any{"auth": tt.auth}}))
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objects {
				if o.Kind != "Deployment" || o.Name != "qm-frontend" {
					continue
				}
				v, _ := deploytest.Typed(o)
				pod := v.(*appsv1.Deployment).Spec.Template.Spec
				got := map[string]string{}
				for _, e := range pod.Containers[0].Env {
					if strings.HasPrefix(e.Name, "AUTH_") {
						got[e.Name] = e.Value
					}
				}
				for k, v := range tt.want {
					if got[k] != v {
						t.Errorf("%s=%q, want %q (all: %v)", k, got[k], v, got)
					}
				}
				for k := range got {
					if _, ok := tt.want[k]; !ok && k != "AUTH_PLAYER_CLAIM" && k != "AUTH_SERVER_SCOPE" {
						t.Errorf("unexpected %s=%q", k, got[k])
					}
				}
				return
			}
			t.Fatal("no frontend Deployment")
		})
	}
}

// The chart refuses to render a frontend without an identity provider
// unless insecure mode is said explicitly, and names the value to set.
// Without this, the defaults rendered a frontend that trusts every
// caller's player id.
func TestChartRefusesFrontendWithoutIdentity(t *testing.T) {
	ch := deploytest.Load(t)
	// Only what the chart required before: the join keys.
	if _, _, _, err := deploytest.Render(ch, "quickmatch", deploytest.JoinKeyValues()); err == nil || !strings.Contains(err.Error(), "frontend.auth.jwksURL: set it") {
		t.Errorf("rendered without an identity provider: %v", err)
	}
	base := deploytest.ValueSets()[0]
	for _, tt := range []struct {
		name string
		auth map[string]any
		want string
	}{
		{"none", map[string]any{"jwksURL": "", "publicKeys": []any{}},
			"frontend.auth.jwksURL: set it (your identity provider's JWKS URL) or frontend.auth.publicKeys (PEM public keys), with frontend.auth.issuer; or set frontend.auth.insecure: true"},
		{"no issuer", map[string]any{"issuer": ""}, "frontend.auth.issuer: required with frontend.auth.jwksURL or frontend.auth.publicKeys"},
		{"insecure and a provider", map[string]any{"insecure": true}, "frontend.auth.insecure is true but frontend.auth.jwksURL or frontend.auth.publicKeys is set too: choose one"},
		{"insecure and a ticket claim", map[string]any{"insecure": true, "jwksURL": "", "ticketClaim": "qm"}, "frontend.auth.ticketClaim needs an identity provider"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := deploytest.Render(ch, "quickmatch", base.With(t, map[string]any{"frontend": map[string]any{"auth": tt.auth}}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
	// A game-server cluster runs no frontend: nothing to say.
	frontendless := base.With(t, map[string]any{"frontend": map[string]any{"enabled": false, "auth": map[string]any{"jwksURL": "", "issuer": ""}}})
	if _, _, _, err := deploytest.Render(ch, "quickmatch", frontendless); err != nil {
		t.Errorf("without a frontend: %v", err)
	}
}
