package deploytest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// Cluster is a real kube-apiserver (envtest: bin/kube) with the real
// Agones CRDs of ../shared/agones/crds.yaml installed.
type Cluster struct {
	Env    *envtest.Environment
	Config *rest.Config
	Client kubernetes.Interface
	Dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

// Assets is KUBEBUILDER_ASSETS; without it the test is skipped locally
// and fails in CI.
func Assets(tb testing.TB) string {
	tb.Helper()
	return testkit.Env(tb, "KUBEBUILDER_ASSETS", "make test builds the control plane into bin/kube (tools/kube/build.sh) and sets it")
}

// StartCluster starts the apiserver for the test.
func StartCluster(t *testing.T) *Cluster {
	t.Helper()
	assets := Assets(t)
	crds := filepath.Join(Root(t), "..", "shared", "agones", "crds.yaml")
	ctrllog.SetLogger(logr.Discard())
	env := &envtest.Environment{BinaryAssetsDirectory: assets, CRDInstallOptions: envtest.CRDInstallOptions{Paths: []string{crds}}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start kube-apiserver: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	return newCluster(t, env, cfg)
}

func newCluster(t *testing.T, env *envtest.Environment, cfg *rest.Config) *Cluster {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &Cluster{Env: env, Config: cfg, Client: cs, Dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// Namespace creates a namespace.
func (c *Cluster) Namespace(t *testing.T, name string) {
	t.Helper()
	if _, err := c.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// ErrNoResource is returned by Create for a kind the server does not serve.
var ErrNoResource = fmt.Errorf("kind not served")

// Create creates o in ns with strict server-side field validation: the
// apiserver refuses an unknown or misspelled field, and checks custom
// resources against their CRD's schema.
func (c *Cluster) Create(ctx context.Context, ns string, o Object) error {
	var u unstructured.Unstructured
	if err := yaml.Unmarshal(o.YAML, &u.Object); err != nil {
		return fmt.Errorf("%s: %w", o, err)
	}
	gvk := u.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		c.mapper.Reset()
		if m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return fmt.Errorf("%s: %w: %v", o, ErrNoResource, err)
		}
	}
	_, err = c.Dyn.Resource(m.Resource).Namespace(ns).Create(ctx, &u, metav1.CreateOptions{FieldValidation: "Strict", FieldManager: "deploy-test"})
	if err != nil {
		return fmt.Errorf("%s: %w", o, err)
	}
	return nil
}
