package deploytest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ControlPlane is a Cluster that also runs workloads, as far as `helm
// install --wait` can tell: kube-controller-manager (Deployments,
// ReplicaSets, ServiceAccounts, Jobs, garbage collection, and the node
// lifecycle, which lifts a new node's not-ready taint), kube-scheduler, and
// kwok, which plays the kubelet of fake nodes so that scheduled pods turn
// Running and Ready. Containers are never started: images need not exist.
type ControlPlane struct {
	*Cluster
	// Kubeconfig is a file with the admin's credentials.
	Kubeconfig string
}

// StartControlPlane starts it all with one kwok node.
func StartControlPlane(t *testing.T) *ControlPlane {
	t.Helper()
	c := StartCluster(t)
	assets, dir := Assets(t), t.TempDir()
	cp := &ControlPlane{Cluster: c, Kubeconfig: adminKubeconfig(t, c.Env, dir)}
	kubeconfig := cp.Kubeconfig
	startAsset(t, assets, "kube-controller-manager", "--kubeconfig="+kubeconfig, "--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig,
		"--leader-elect=false", "--secure-port=0", "--use-service-account-credentials=false",
		"--controllers=deployment-controller,replicaset-controller,serviceaccount-controller,garbage-collector-controller,job-controller,node-lifecycle-controller")
	startAsset(t, assets, "kube-scheduler", "--kubeconfig="+kubeconfig, "--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig,
		"--leader-elect=false", "--secure-port=0")
	startAsset(t, assets, "kwok", "--kubeconfig="+kubeconfig, "--manage-all-nodes=true", "--config="+kwokConfig(t, dir))
	cp.addNode(t, "kwok-node-0")
	return cp
}

// adminKubeconfig writes a kubeconfig of a system:masters user in dir, for
// the processes that act as the cluster's own components.
func adminKubeconfig(t *testing.T, env *envtest.Environment, dir string) string {
	t.Helper()
	admin, err := env.AddUser(envtest.User{Name: "deploy-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}

// startAsset runs the binary name of the test assets until the test ends;
// its output is logged (the tail) only if the test failed.
func startAsset(t *testing.T, assets, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(assets, name), args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			tail := out.Bytes()
			if len(tail) > 4000 {
				tail = tail[len(tail)-4000:]
			}
			t.Logf("%s output (tail):\n%s", name, tail)
		}
	})
}

// kwokConfig writes kwok's configuration in dir: the node and pod
// lifecycles it plays (deploy/testdata/kwok-stages.yaml), and nothing from
// $HOME.
func kwokConfig(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "kwok.yaml")
	stages, err := os.ReadFile(filepath.Join(Root(t), "deploy", "testdata", "kwok-stages.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, stages, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// addNode creates a fake node that kwok manages and waits until kwok has
// made it Ready, so that pods can be scheduled on it.
func (cp *ControlPlane) addNode(t *testing.T, name string) {
	t.Helper()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"type": "kwok", "kubernetes.io/hostname": name},
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"}},
		Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("110")},
		},
	}
	if _, err := cp.Client.CoreV1().Nodes().Create(t.Context(), node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := cp.Client.CoreV1().Nodes().Get(t.Context(), node.Name, metav1.GetOptions{})
		if err == nil {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kwok never made node %s Ready (%v)", node.Name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
