package deploy

import (
	"context"
	"slices"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/utils/ptr"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
)

// `helm install --wait` of the chart completes on a control plane whose
// nodes are kwok's: every Deployment rolls out and its pods turn Ready.
func TestHelmInstallWait(t *testing.T) {
	cp := deploytest.StartControlPlane(t)
	const ns = "quickmatch"
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig, namespace := cp.Kubeconfig, ns
	flags.KubeConfig, flags.Namespace = &kubeconfig, &namespace
	var cfg action.Configuration
	if err := cfg.Init(flags, ns, "secret", t.Logf); err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(&cfg)
	install.ReleaseName, install.Namespace, install.CreateNamespace = "qm", ns, true
	install.Wait, install.Timeout = true, 90*time.Second
	start := time.Now()
	rel, err := install.Run(deploytest.Load(t), deploytest.ValueSets()[0].Values(t))
	if err != nil {
		dumpState(t, cp, ns)
		t.Fatalf("helm install --wait: %v", err)
	}
	t.Logf("release %s %s after %s", rel.Name, rel.Info.Status, time.Since(start).Round(time.Millisecond))
	deps, err := cp.Client.AppsV1().Deployments(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		if d.Spec.Replicas == nil || d.Status.ReadyReplicas != *d.Spec.Replicas {
			t.Errorf("%s: %d of %v ready after --wait", d.Name, d.Status.ReadyReplicas, d.Spec.Replicas)
		}
	}
	if len(deps.Items) != 3 {
		t.Errorf("%d deployments, want frontend, matcher, allocator", len(deps.Items))
	}

	// helm test runs the chart's test pods (kwok completes them: their
	// containers are not run here) and waits for them to succeed.
	test := action.NewReleaseTesting(&cfg)
	test.Namespace, test.Timeout = ns, time.Minute
	tested, err := test.Run("qm")
	if err != nil {
		t.Fatalf("helm test: %v", err)
	}
	ran, provisioned := 0, false
	for _, h := range tested.Hooks {
		if slices.Contains(h.Events, release.HookPreInstall) {
			// The provisioning Job ran before the Deployments (kwok
			// completes its pod): install would have failed otherwise.
			provisioned = h.Kind == "Job" && h.LastRun.Phase == release.HookPhaseSucceeded
			continue
		}
		if h.LastRun.Phase != "" {
			ran++
			if h.LastRun.Phase != "Succeeded" {
				t.Errorf("test hook %s: %s", h.Name, h.LastRun.Phase)
			}
		}
	}
	if ran != 2 {
		t.Errorf("%d test hooks ran, want 2", ran)
	}
	if !provisioned {
		t.Error("the provisioning Job did not run before install")
	}
	upgradeToAutoscaling(t, cp, &cfg, ns)
}

// upgradeToAutoscaling: an upgrade that turns the matcher's autoscaler on
// keeps the replicas it runs (3 here, from an upgrade that turned it off).
// Left out of the manifest, the field was removed by the upgrade's patch
// and Kubernetes set the Deployment to one replica. And upgrades leave an
// autoscaled fleet at the size its autoscaler gave it (7 here): Helm
// patches a custom resource from the chart's last manifest to its new one
// alone, so a size the values did not change is left as it is.
func upgradeToAutoscaling(t *testing.T, cp *deploytest.ControlPlane, cfg *action.Configuration, ns string) {
	vs := deploytest.ValueSets()[0]
	fleets := cp.Dyn.Resource(schema.GroupVersionResource{Group: "agones.dev", Version: "v1", Resource: "fleets"}).Namespace(ns)
	fleet, err := fleets.Get(t.Context(), "rps", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(fleet.Object, int64(7), "spec", "replicas"); err != nil {
		t.Fatal(err)
	}
	if _, err := fleets.Update(t.Context(), fleet, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []map[string]any{
		{"enabled": false},
		{"enabled": true, "minReplicas": 2, "maxReplicas": 10, "targetCPUUtilizationPercentage": 70},
	} {
		up := action.NewUpgrade(cfg)
		up.Namespace, up.Timeout = ns, 90*time.Second
		if _, err := up.Run("qm", deploytest.Load(t), vs.With(t, map[string]any{"matcher": map[string]any{"replicas": 3, "autoscaling": m}})); err != nil {
			t.Fatalf("helm upgrade (matcher autoscaling %v): %v", m["enabled"], err)
		}
	}
	d, err := cp.Client.AppsV1().Deployments(ns).Get(t.Context(), "qm-matcher", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("matcher replicas %d after the upgrade that turned its autoscaler on, want the 3 it ran", ptr.Deref(d.Spec.Replicas, -1))
	}
	// Grown by its autoscaler, an upgrade leaves it so (Helm patches a
	// Deployment three ways, against what runs: a count in the manifest
	// would be set again).
	scale, err := cp.Client.AppsV1().Deployments(ns).GetScale(t.Context(), "qm-matcher", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 5
	if _, err := cp.Client.AppsV1().Deployments(ns).UpdateScale(t.Context(), "qm-matcher", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	up := action.NewUpgrade(cfg)
	up.Namespace, up.Timeout = ns, 90*time.Second
	if _, err := up.Run("qm", deploytest.Load(t), vs.With(t, map[string]any{"matcher": map[string]any{"replicas": 3}})); err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
	if d, err = cp.Client.AppsV1().Deployments(ns).Get(t.Context(), "qm-matcher", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 5 {
		t.Errorf("matcher replicas %d after an upgrade, want the 5 its autoscaler gave it", ptr.Deref(d.Spec.Replicas, -1))
	}
	if fleet, err = fleets.Get(t.Context(), "rps", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := unstructured.NestedInt64(fleet.Object, "spec", "replicas"); n != 7 {
		t.Errorf("fleet replicas %d after upgrades, want the 7 its autoscaler gave it", n)
	}
}

// dumpState logs what the workloads and the events of ns say.
func dumpState(t *testing.T, cp *deploytest.ControlPlane, ns string) {
	ctx := context.Background()
	if deps, err := cp.Client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, d := range deps.Items {
			t.Logf("deployment %s: %+v", d.Name, d.Status)
		}
	}
	if pods, err := cp.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			t.Logf("pod %s on %q: %s %+v", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.Conditions)
		}
	}
	if evs, err := cp.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, e := range evs.Items {
			t.Logf("event %s %s: %s %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
}
