package kubetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// TestAllocatorRBAC installs deploy/rbac/allocator.yaml into the real
// apiserver and asks it, per verb and resource, what the allocator's
// service account may do: exactly what the allocator uses, nothing more.
func TestAllocatorRBAC(t *testing.T) {
	c := Start(t)
	cs, err := kubernetes.NewForConfig(c.Admin)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "rbac", "allocator.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, doc := range strings.Split(string(data), "\n---") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "ServiceAccount":
			var sa corev1.ServiceAccount
			mustStrict(t, doc, &sa)
			_, err = cs.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, &sa, metav1.CreateOptions{})
		case "Role":
			var r rbacv1.Role
			mustStrict(t, doc, &r)
			_, err = cs.RbacV1().Roles(r.Namespace).Create(ctx, &r, metav1.CreateOptions{})
		case "RoleBinding":
			var rb rbacv1.RoleBinding
			mustStrict(t, doc, &rb)
			_, err = cs.RbacV1().RoleBindings(rb.Namespace).Create(ctx, &rb, metav1.CreateOptions{})
		default:
			t.Fatalf("unexpected kind %q", meta.Kind)
		}
		if err != nil {
			t.Fatalf("create %s: %v", meta.Kind, err)
		}
	}
	user := "system:serviceaccount:default:quickmatch-allocator"
	tests := []struct {
		group, resource, verb, ns string
		allowed                   bool
	}{
		{"allocation.agones.dev", "gameserverallocations", "create", "default", true},
		{"agones.dev", "gameservers", "list", "default", true},
		{"agones.dev", "gameservers", "watch", "default", true},
		{"agones.dev", "fleets", "get", "default", true},
		{"agones.dev", "gameservers", "delete", "default", false},
		{"agones.dev", "gameservers", "update", "default", false},
		{"agones.dev", "fleets", "patch", "default", false},
		{"", "secrets", "get", "default", false},
		{"", "pods", "list", "default", false},
		{"allocation.agones.dev", "gameserverallocations", "create", "kube-system", false},
	}
	for _, tt := range tests {
		sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User:               user,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"},
			ResourceAttributes: &authzv1.ResourceAttributes{Group: tt.group, Resource: tt.resource, Verb: tt.verb, Namespace: tt.ns},
		}}
		out, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if out.Status.Allowed != tt.allowed {
			t.Errorf("%s %s.%s in %s: allowed=%v, want %v (%s)", tt.verb, tt.resource, tt.group, tt.ns, out.Status.Allowed, tt.allowed, out.Status.Reason)
		}
	}
}

func mustStrict(t *testing.T, doc string, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
		t.Fatalf("decode: %v", err)
	}
}
