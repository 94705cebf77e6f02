package deploy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
)

// exposure is what a render gives players to reach the frontend: its
// Ingress (nil without one), Service, Deployment and NetworkPolicy, the
// Deployment's TRUST_PROXY, and the notes.
type exposure struct {
	ingress    *networkingv1.Ingress
	service    *corev1.Service
	deployment *appsv1.Deployment
	policy     *networkingv1.NetworkPolicy
	trustProxy string
	notes      string
}

func renderExposure(t *testing.T, vals map[string]any) exposure {
	t.Helper()
	objects, _, notes, err := deploytest.Render(deploytest.Load(t), "quickmatch", vals)
	if err != nil {
		t.Fatal(err)
	}
	e := exposure{notes: notes}
	for _, o := range objects {
		v, err := deploytest.Typed(o)
		if err != nil {
			t.Fatal(err)
		}
		switch v := v.(type) {
		case *networkingv1.Ingress:
			if e.ingress != nil {
				t.Fatalf("two Ingresses: %s and %s", e.ingress.Name, v.Name)
			}
			e.ingress = v
		case *corev1.Service:
			if v.Name == "qm-frontend" {
				e.service = v
			}
		case *appsv1.Deployment:
			if v.Name == "qm-frontend" {
				e.deployment = v
				for _, env := range v.Spec.Template.Spec.Containers[0].Env {
					if env.Name == "TRUST_PROXY" {
						e.trustProxy = env.Value
					}
				}
			}
		case *networkingv1.NetworkPolicy:
			if v.Name == "qm-frontend" {
				e.policy = v
			}
		}
	}
	if e.service == nil || e.deployment == nil {
		t.Fatal("no frontend Service or Deployment")
	}
	return e
}

// ingressValues turns the frontend's Ingress on with these settings, on
// top of other frontend values.
func ingressValues(ingress map[string]any, frontend map[string]any) map[string]any {
	f := map[string]any{"ingress": ingress}
	for k, v := range frontend {
		f[k] = v
	}
	return map[string]any{"frontend": f}
}

// The chart offers frontend.ingress, off: by default nothing but the
// frontend's ClusterIP Service is rendered for players, and the frontend
// reads no X-Forwarded-For.
func TestChartIngressOffByDefault(t *testing.T) {
	vals, err := chartutil.ReadValuesFile(filepath.Join(deploytest.ChartDir(t), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if on, err := vals.PathValue("frontend.ingress.enabled"); err != nil || on != false {
		t.Errorf("values.yaml: frontend.ingress.enabled %v (%v), want false", on, err)
	}
	e := renderExposure(t, deploytest.ValueSets()[0].Values(t))
	if e.ingress != nil {
		t.Errorf("an Ingress by default: %s", e.ingress.Name)
	}
	if e.trustProxy != "false" {
		t.Errorf("TRUST_PROXY %q by default, want false", e.trustProxy)
	}
	if strings.Contains(e.notes, "frontend.ingress") {
		t.Errorf("notes speak of the ingress that is off:\n%s", e.notes)
	}
}

// The Ingress routes each host, at / (Prefix), to the frontend Service's
// port, which leads to the frontend's players' port; with the class,
// annotations and TLS of the values; and the NetworkPolicy lets an
// ingress controller of another namespace in on that port.
func TestChartIngressRoutesToFrontend(t *testing.T) {
	tls := []any{
		map[string]any{"secretName": "play-tls", "hosts": []any{"play.example.com"}},
		map[string]any{"secretName": "wild-tls", "hosts": []any{"*.eu.example.com"}},
	}
	for _, tt := range []struct {
		name     string
		values   map[string]any
		class    string
		hosts    []string
		tls      []networkingv1.IngressTLS
		annotate map[string]string
	}{
		{"class, annotations, tls",
			ingressValues(map[string]any{"enabled": true, "className": "nginx",
				"annotations": map[string]any{"cert-manager.io/cluster-issuer": "letsencrypt", "nginx.ingress.kubernetes.io/proxy-read-timeout": "60"},
				"hosts":       []any{"play.example.com", "a.eu.example.com"}, "tls": tls}, nil),
			"nginx", []string{"play.example.com", "a.eu.example.com"},
			[]networkingv1.IngressTLS{{SecretName: "play-tls", Hosts: []string{"play.example.com"}}, {SecretName: "wild-tls", Hosts: []string{"*.eu.example.com"}}},
			map[string]string{"cert-manager.io/cluster-issuer": "letsencrypt", "nginx.ingress.kubernetes.io/proxy-read-timeout": "60"}},
		// The cluster's default class, no annotations, and a Service on
		// a port of its own: the backend follows it.
		{"default class, another service port",
			ingressValues(map[string]any{"enabled": true, "hosts": []any{"play.example.com"}, "tls": tls[:1]},
				map[string]any{"service": map[string]any{"port": 8080}}),
			"", []string{"play.example.com"}, []networkingv1.IngressTLS{{SecretName: "play-tls", Hosts: []string{"play.example.com"}}}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := renderExposure(t, deploytest.ValueSets()[0].With(t, tt.values))
			ing := e.ingress
			if ing == nil {
				t.Fatal("no Ingress")
			}
			if ing.Name != "qm-frontend" || ing.Labels["app.kubernetes.io/component"] != "frontend" {
				t.Errorf("Ingress %s labelled %v", ing.Name, ing.Labels)
			}
			if got := ptrValue(ing.Spec.IngressClassName); got != tt.class {
				t.Errorf("ingressClassName %q, want %q", got, tt.class)
			}
			if len(ing.Annotations) != len(tt.annotate) {
				t.Errorf("annotations %v, want %v", ing.Annotations, tt.annotate)
			}
			for k, v := range tt.annotate {
				if ing.Annotations[k] != v {
					t.Errorf("annotation %s %q, want %q", k, ing.Annotations[k], v)
				}
			}
			if !slices.EqualFunc(ing.Spec.TLS, tt.tls, func(a, b networkingv1.IngressTLS) bool {
				return a.SecretName == b.SecretName && slices.Equal(a.Hosts, b.Hosts)
			}) {
				t.Errorf("tls %+v, want %+v", ing.Spec.TLS, tt.tls)
			}
			if ing.Spec.DefaultBackend != nil {
				t.Errorf("a default backend: %+v", ing.Spec.DefaultBackend)
			}
			var hosts []string
			for _, r := range ing.Spec.Rules {
				hosts = append(hosts, r.Host)
				if r.HTTP == nil || len(r.HTTP.Paths) != 1 {
					t.Fatalf("host %s: paths %+v, want /", r.Host, r.HTTP)
				}
				p := r.HTTP.Paths[0]
				if p.Path != "/" || p.PathType == nil || *p.PathType != networkingv1.PathTypePrefix {
					t.Errorf("host %s: path %q type %v, want / Prefix", r.Host, p.Path, p.PathType)
				}
				checkBackend(t, r.Host, p.Backend, e)
			}
			if !slices.Equal(hosts, tt.hosts) {
				t.Errorf("hosts %v, want %v", hosts, tt.hosts)
			}
			if e.trustProxy != "false" {
				t.Errorf("TRUST_PROXY %q behind the Ingress, not asked for: want false (the chart does not know whether the controller replaces the header or appends to it)", e.trustProxy)
			}
		})
	}
}

// checkBackend: the backend is the frontend Service by its name and one
// of its ports, whose target is the frontend container's players' port,
// and the frontend's NetworkPolicy lets a controller in another
// namespace reach that port.
func checkBackend(t *testing.T, host string, b networkingv1.IngressBackend, e exposure) {
	t.Helper()
	if b.Service == nil || b.Resource != nil {
		t.Fatalf("host %s: backend %+v, want a Service", host, b)
	}
	if b.Service.Name != e.service.Name {
		t.Errorf("host %s: backend Service %q, want %q", host, b.Service.Name, e.service.Name)
	}
	i := slices.IndexFunc(e.service.Spec.Ports, func(p corev1.ServicePort) bool {
		return p.Port == b.Service.Port.Number && b.Service.Port.Number != 0 || b.Service.Port.Name != "" && p.Name == b.Service.Port.Name
	})
	if i < 0 {
		t.Fatalf("host %s: backend port %+v is none of the Service's %+v", host, b.Service.Port, e.service.Spec.Ports)
	}
	target := e.service.Spec.Ports[i].TargetPort
	c := e.deployment.Spec.Template.Spec.Containers[0]
	j := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == target.StrVal || p.ContainerPort == target.IntVal })
	if j < 0 || c.Ports[j].ContainerPort != 3000 {
		t.Fatalf("host %s: Service port %+v leads to %+v, want the players' port 3000", host, e.service.Spec.Ports[i], c.Ports)
	}
	if e.policy == nil {
		return // network policies off
	}
	// An ingress-nginx controller pod, in its own namespace.
	controller := labels.Set{"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}
	namespace := labels.Set{"kubernetes.io/metadata.name": "ingress-nginx"}
	if !policyAdmits(t, e.policy, controller, namespace, c.Ports[j].ContainerPort) {
		t.Errorf("host %s: NetworkPolicy %s keeps an ingress controller of another namespace off port %d: %+v", host, e.policy.Name, c.Ports[j].ContainerPort, e.policy.Spec.Ingress)
	}
}

// policyAdmits says whether p lets a pod with these labels, in a
// namespace of its own with nsLabels, in on TCP port.
func policyAdmits(t *testing.T, p *networkingv1.NetworkPolicy, pod, nsLabels labels.Set, port int32) bool {
	t.Helper()
	matches := func(s *metav1.LabelSelector, l labels.Set) bool {
		sel, err := metav1.LabelSelectorAsSelector(s)
		if err != nil {
			t.Fatal(err)
		}
		return sel.Matches(l)
	}
	for _, rule := range p.Spec.Ingress {
		onPort := len(rule.Ports) == 0
		for _, rp := range rule.Ports {
			onPort = onPort || rp.Port != nil && rp.Port.IntVal == port && (rp.Protocol == nil || *rp.Protocol == corev1.ProtocolTCP)
		}
		if !onPort {
			continue
		}
		if len(rule.From) == 0 {
			return true
		}
		for _, peer := range rule.From {
			// A peer with only a podSelector means the policy's own
			// namespace: never the controller's.
			if peer.NamespaceSelector != nil && matches(peer.NamespaceSelector, nsLabels) && (peer.PodSelector == nil || matches(peer.PodSelector, pod)) {
				return true
			}
		}
	}
	return false
}

func ptrValue(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// The frontend reads the client's address from X-Forwarded-For only when
// the values say so: behind a controller that appends to the client's
// own header while its peer is a node's private address, the client's
// entry would pick its rate-limit key (review of c45e88b, which turned it
// on for any ClusterIP Service behind the Ingress). The notes say when it
// does not behind the Ingress, and why that matters.
func TestChartIngressTrustProxy(t *testing.T) {
	on := map[string]any{"enabled": true, "hosts": []any{"play.example.com"}, "tls": []any{map[string]any{"secretName": "play-tls", "hosts": []any{"play.example.com"}}}}
	off := map[string]any{"enabled": false}
	for _, tt := range []struct {
		name     string
		values   map[string]any
		want     string
		warnings []string // in the notes; none when empty
	}{
		{"ingress, ClusterIP", ingressValues(on, nil), "false",
			[]string{"does not read X-Forwarded-For (frontend.trustProxy is false)", "Set frontend.trustProxy: true if the controller writes"}},
		{"ingress, NodePort", ingressValues(on, map[string]any{"service": map[string]any{"type": "NodePort"}}), "false",
			[]string{"does not read X-Forwarded-For"}},
		{"ingress, LoadBalancer", ingressValues(on, map[string]any{"service": map[string]any{"type": "LoadBalancer"}}), "false",
			[]string{"does not read X-Forwarded-For"}},
		{"ingress, said false", ingressValues(on, map[string]any{"trustProxy": false}), "false",
			[]string{"does not read X-Forwarded-For (frontend.trustProxy is false)", "requests without a valid token share one rate limit"}},
		{"ingress, said true", ingressValues(on, map[string]any{"trustProxy": true}), "true", nil},
		{"ingress, LoadBalancer, said true", ingressValues(on, map[string]any{"trustProxy": true, "service": map[string]any{"type": "LoadBalancer"}}), "true", nil},
		{"no ingress, said true", ingressValues(off, map[string]any{"trustProxy": true}), "true", nil},
		{"no ingress", ingressValues(off, nil), "false", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := renderExposure(t, deploytest.ValueSets()[0].With(t, tt.values))
			if e.trustProxy != tt.want {
				t.Errorf("TRUST_PROXY %q, want %q", e.trustProxy, tt.want)
			}
			for _, w := range tt.warnings {
				if !strings.Contains(e.notes, w) {
					t.Errorf("notes do not say %q:\n%s", w, e.notes)
				}
			}
			if len(tt.warnings) == 0 && strings.Contains(e.notes, "X-Forwarded-For") {
				t.Errorf("notes warn of X-Forwarded-For:\n%s", e.notes)
			}
		})
	}
}

// The notes warn of every host of the Ingress that no tls entry covers
// (its players' bearer tokens in clear), and of none that one does, by
// its name or a wildcard one label up.
func TestChartIngressNotesWarnWithoutTLS(t *testing.T) {
	hosts := []any{"play.example.com", "a.eu.example.com"}
	tlsFor := func(hosts ...any) map[string]any { return map[string]any{"secretName": "s", "hosts": hosts} }
	for _, tt := range []struct {
		name string
		tls  []any
		bare string // the hosts the warning names; "" for no warning
	}{
		{"every host", []any{tlsFor("play.example.com"), tlsFor("a.eu.example.com")}, ""},
		{"a wildcard", []any{tlsFor("play.example.com", "*.eu.example.com")}, ""},
		{"the controller's default certificate", []any{map[string]any{"secretName": "s"}}, ""},
		{"none", nil, "play.example.com, a.eu.example.com"},
		{"a wildcard two labels up", []any{tlsFor("play.example.com", "*.example.com")}, "a.eu.example.com"},
		{"another host", []any{tlsFor("example.com")}, "play.example.com, a.eu.example.com"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ing := map[string]any{"enabled": true, "hosts": hosts}
			if tt.tls != nil {
				ing["tls"] = tt.tls
			}
			e := renderExposure(t, deploytest.ValueSets()[0].With(t, ingressValues(ing, nil)))
			warned := strings.Contains(e.notes, "no frontend.ingress.tls entry covers")
			switch {
			case tt.bare == "" && warned:
				t.Errorf("notes warn of hosts without TLS:\n%s", e.notes)
			case tt.bare != "" && !strings.Contains(e.notes, "no frontend.ingress.tls entry covers "+tt.bare+":"):
				t.Errorf("notes do not name %s as without TLS:\n%s", tt.bare, e.notes)
			}
			if !strings.Contains(e.notes, "https://play.example.com/") {
				t.Errorf("notes do not say where to play:\n%s", e.notes)
			}
		})
	}
}

// Values an Ingress cannot take are refused at render, naming them.
func TestChartRefusesBadIngressValues(t *testing.T) {
	ch := deploytest.Load(t)
	base := deploytest.ValueSets()[0]
	for _, tt := range []struct {
		name    string
		ingress map[string]any
		want    string
	}{
		// An Ingress with no rule would route nothing (or, with a rule
		// without a host, every name the controller serves).
		{"enabled without hosts", map[string]any{"enabled": true}, "at '/frontend/ingress/hosts': minItems: got 0, want 1"},
		{"a URL as a host", map[string]any{"enabled": true, "hosts": []any{"https://play.example.com"}}, "at '/frontend/ingress/hosts/0': 'https://play.example.com' does not match pattern"},
		{"a host with a capital", map[string]any{"enabled": true, "hosts": []any{"Play.example.com"}}, "at '/frontend/ingress/hosts/0': 'Play.example.com' does not match pattern"},
		// The API server refuses an IP address as a rule's host.
		{"an IP address as a host", map[string]any{"enabled": true, "hosts": []any{"203.0.113.7"}}, "at '/frontend/ingress/hosts/0': 'not' failed"},
		{"a host twice", map[string]any{"enabled": true, "hosts": []any{"play.example.com", "play.example.com"}}, "at '/frontend/ingress/hosts': items at 0 and 1 are equal"},
		// Annotations are strings: a number (--set ...=3600) would be
		// refused by the apiserver at install, or not rendered as meant.
		{"a number annotation", map[string]any{"annotations": map[string]any{"nginx.ingress.kubernetes.io/proxy-read-timeout": 3600}}, "at '/frontend/ingress/annotations/nginx.ingress.kubernetes.io~1proxy-read-timeout': got number, want string"},
		{"a misspelled tls key", map[string]any{"tls": []any{map[string]any{"secret": "play-tls"}}}, "at '/frontend/ingress/tls/0': additional properties 'secret' not allowed"},
		{"a misspelled key", map[string]any{"class": "nginx"}, "at '/frontend/ingress': additional properties 'class' not allowed"},
		{"a class that is no name", map[string]any{"className": "Nginx Public"}, "at '/frontend/ingress/className': 'Nginx Public' does not match pattern"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := deploytest.Render(ch, "quickmatch", base.With(t, ingressValues(tt.ingress, nil)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// The examples a studio starts from expose the frontend over HTTPS only:
// an Ingress whose every host has TLS, a Service players cannot reach
// around it, and the client's address read from X-Forwarded-For.
func TestChartExamplesExposeFrontendOverTLS(t *testing.T) {
	for _, name := range []string{"single-cluster", "control-cluster"} {
		t.Run(name, func(t *testing.T) {
			e := renderExposure(t, valueSet(t, name).Values(t))
			if e.ingress == nil || len(e.ingress.Spec.Rules) == 0 {
				t.Fatal("no Ingress with a rule")
			}
			tls := map[string]bool{}
			for _, entry := range e.ingress.Spec.TLS {
				for _, h := range entry.Hosts {
					tls[h] = entry.SecretName != ""
				}
			}
			for _, r := range e.ingress.Spec.Rules {
				if !tls[r.Host] {
					t.Errorf("host %q has no TLS Secret: %+v", r.Host, e.ingress.Spec.TLS)
				}
				for _, p := range r.HTTP.Paths {
					checkBackend(t, r.Host, p.Backend, e)
				}
			}
			if e.service.Spec.Type != corev1.ServiceTypeClusterIP || e.trustProxy != "true" {
				t.Errorf("Service %s, TRUST_PROXY %q: want ClusterIP, true", e.service.Spec.Type, e.trustProxy)
			}
			if strings.Contains(e.notes, "WARNING: no frontend.ingress.tls") || strings.Contains(e.notes, "X-Forwarded-For") {
				t.Errorf("notes warn:\n%s", e.notes)
			}
		})
	}
}

// The notes say where to play at a host a browser opens: the first that
// is a name, or, when every host is a wildcard, the first with a
// placeholder for the name it stands for, never "https://*.".
func TestChartIngressNotesPlayAtAName(t *testing.T) {
	for _, tt := range []struct {
		name  string
		hosts []any
		want  string
	}{
		{"a name after a wildcard", []any{"*.eu.example.com", "play.example.com"}, "https://play.example.com/"},
		{"wildcards alone", []any{"*.eu.example.com", "*.us.example.com"}, "https://<name>.eu.example.com/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ing := map[string]any{"enabled": true, "hosts": tt.hosts, "tls": []any{map[string]any{"secretName": "s", "hosts": tt.hosts}}}
			e := renderExposure(t, deploytest.ValueSets()[0].With(t, ingressValues(ing, nil)))
			if !strings.Contains(e.notes, tt.want) || strings.Contains(e.notes, "https://*") {
				t.Errorf("notes do not say to play at %s (or name a wildcard):\n%s", tt.want, e.notes)
			}
		})
	}
}
