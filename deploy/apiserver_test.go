package deploy

import (
	"errors"
	"strings"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
)

// Every value set's objects are created on a real kube-apiserver with the
// real Agones CRDs and strict field validation, each set in a namespace of
// its own. Prometheus Operator kinds are skipped: their CRDs are not here.
func TestChartCreatesOnAPIServer(t *testing.T) {
	c := deploytest.StartCluster(t)
	ch := deploytest.Load(t)
	for _, vs := range deploytest.ValueSets() {
		t.Run(vs.Name, func(t *testing.T) {
			ns := "qm-" + vs.Name
			c.Namespace(t, ns)
			objects, hooks, _, err := deploytest.Render(ch, ns, vs.Values(t))
			if err != nil {
				t.Fatal(err)
			}
			created := 0
			for _, o := range append(objects, hooks...) {
				err := c.Create(t.Context(), ns, o)
				switch {
				case errors.Is(err, deploytest.ErrNoResource) && o.APIVersion == "monitoring.coreos.com/v1":
					t.Logf("skipped %s: no Prometheus Operator CRDs here", o)
				case err != nil:
					t.Error(err)
				default:
					created++
				}
			}
			t.Logf("%d objects created in %s", created, ns)
		})
	}
}

// The apiserver with the Agones CRDs refuses a Fleet with a misspelled
// field (the check above would catch a typo in the chart) and a List
// above 1000 values (what the chart refuses at render).
func TestAPIServerRefusesMisspelledFleetField(t *testing.T) {
	c := deploytest.StartCluster(t)
	c.Namespace(t, "typo")
	objects, _, _, err := deploytest.Render(deploytest.Load(t), "typo", deploytest.ValueSets()[0].Values(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objects {
		if o.Kind != "Fleet" {
			continue
		}
		bad := o
		bad.YAML = []byte(strings.Replace(string(o.YAML), "      lists:", "      lsits:", 1))
		if string(bad.YAML) == string(o.YAML) {
			t.Fatal("no lists in the Fleet to misspell")
		}
		err := c.Create(t.Context(), "typo", bad)
		if err == nil || !strings.Contains(err.Error(), "lsits") {
			t.Fatalf("misspelled field accepted or not named: %v", err)
		}
		big := o
		big.YAML = []byte(strings.Replace(string(o.YAML), "capacity: 200\n", "capacity: 1001\n", 1))
		if string(big.YAML) == string(o.YAML) {
			t.Fatal("no players capacity of 200 in the Fleet")
		}
		if err := c.Create(t.Context(), "typo", big); err == nil || !strings.Contains(err.Error(), "1000") {
			t.Fatalf("a players List of 1001 accepted or the limit not named: %v", err)
		}
		if err := c.Create(t.Context(), "typo", o); err != nil {
			t.Fatalf("the real Fleet: %v", err)
		}
		return
	}
	t.Fatal("no Fleet rendered")
}

// The allocator's RBAC, exercised through the apiserver as its
// ServiceAccount (impersonated): what it uses is allowed, nothing else is.
// GameServerAllocation is served by Agones' aggregated API, not here, so
// that one is asked with a SubjectAccessReview.
func TestAllocatorRBACAsItsServiceAccount(t *testing.T) {
	c := deploytest.StartCluster(t)
	ch := deploytest.Load(t)
	for _, tt := range []struct {
		set     string
		account string
	}{
		{"defaults", "qm-allocator"},
		{"game-cluster", "quickmatch-remote-allocator"},
	} {
		t.Run(tt.set, func(t *testing.T) {
			ns := "rbac-" + tt.set
			other := ns + "-other"
			c.Namespace(t, ns)
			c.Namespace(t, other)
			var vs deploytest.ValueSet
			for _, v := range deploytest.ValueSets() {
				if v.Name == tt.set {
					vs = v
				}
			}
			objects, _, _, err := deploytest.Render(ch, ns, vs.Values(t))
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objects {
				if err := c.Create(t.Context(), ns, o); err != nil {
					t.Fatal(err)
				}
			}
			// A Fleet in the other namespace, which the account must not see.
			for _, o := range objects {
				if o.Kind == "Fleet" {
					if err := c.Create(t.Context(), other, o); err != nil {
						t.Fatal(err)
					}
				}
			}
			user := "system:serviceaccount:" + ns + ":" + tt.account
			cfg := rest.CopyConfig(c.Config)
			cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
			as, err := dynamic.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			gs := schema.GroupVersionResource{Group: "agones.dev", Version: "v1", Resource: "gameservers"}
			fleets := schema.GroupVersionResource{Group: "agones.dev", Version: "v1", Resource: "fleets"}
			secrets := schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
			pods := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
			ctx := t.Context()
			allowed := func(what string, err error) {
				t.Helper()
				if err != nil {
					t.Errorf("%s as %s: %v", what, tt.account, err)
				}
			}
			forbidden := func(what string, err error) {
				t.Helper()
				if !apierrors.IsForbidden(err) {
					t.Errorf("%s as %s: %v, want Forbidden", what, tt.account, err)
				}
			}
			_, err = as.Resource(gs).Namespace(ns).List(ctx, metav1.ListOptions{})
			allowed("list gameservers", err)
			_, err = as.Resource(fleets).Namespace(ns).Get(ctx, "rps", metav1.GetOptions{})
			allowed("get fleet", err)
			w, err := as.Resource(gs).Namespace(ns).Watch(ctx, metav1.ListOptions{})
			allowed("watch gameservers", err)
			if w != nil {
				w.Stop()
			}
			forbidden("delete fleet", as.Resource(fleets).Namespace(ns).Delete(ctx, "rps", metav1.DeleteOptions{}))
			_, err = as.Resource(fleets).Namespace(ns).Patch(ctx, "rps", "application/merge-patch+json", []byte(`{"spec":{"replicas":0}}`), metav1.PatchOptions{})
			forbidden("patch fleet", err)
			forbidden("delete gameservers", as.Resource(gs).Namespace(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}))
			_, err = as.Resource(secrets).Namespace(ns).List(ctx, metav1.ListOptions{})
			forbidden("list secrets", err)
			_, err = as.Resource(pods).Namespace(ns).List(ctx, metav1.ListOptions{})
			forbidden("list pods", err)
			_, err = as.Resource(fleets).Namespace(other).Get(ctx, "rps", metav1.GetOptions{})
			forbidden("get fleet of another namespace", err)
			for _, sar := range []struct {
				ns      string
				verb    string
				allowed bool
			}{{ns, "create", true}, {ns, "delete", false}, {other, "create", false}} {
				out, err := c.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
					User: user, Groups: cfg.Impersonate.Groups,
					ResourceAttributes: &authzv1.ResourceAttributes{Group: "allocation.agones.dev", Resource: "gameserverallocations", Verb: sar.verb, Namespace: sar.ns},
				}}, metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if out.Status.Allowed != sar.allowed {
					t.Errorf("%s gameserverallocations in %s: allowed=%v, want %v", sar.verb, sar.ns, out.Status.Allowed, sar.allowed)
				}
			}
		})
	}
}
