package deploy

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// sealRender is what a render gives the seal keys: the Secret the chart
// made (nil if none), and, for the frontend and the matcher, SEAL_KEY_FILE
// and the Secret their pods mount at its directory.
type sealRender struct {
	secret   *corev1.Secret
	file     map[string]string
	mounted  map[string]string
	checksum map[string]string // the pods' checksum/seal-keys
}

func renderSeal(t *testing.T, vals map[string]any) sealRender {
	t.Helper()
	objects, _, _, err := deploytest.Render(deploytest.Load(t), "quickmatch", vals)
	if err != nil {
		t.Fatal(err)
	}
	r := sealRender{file: map[string]string{}, mounted: map[string]string{}, checksum: map[string]string{}}
	for _, o := range objects {
		v, err := deploytest.Typed(o)
		if err != nil {
			t.Fatal(err)
		}
		switch v := v.(type) {
		case *corev1.Secret:
			if v.Name == "qm-seal-keys" {
				r.secret = v
			}
		case *appsv1.Deployment:
			if v.Name != "qm-frontend" && v.Name != "qm-matcher" {
				continue
			}
			if sum, ok := v.Spec.Template.Annotations["checksum/seal-keys"]; ok {
				r.checksum[v.Name] = sum
			}
			pod := v.Spec.Template.Spec
			for _, e := range pod.Containers[0].Env {
				if e.Name == "SEAL_KEY_FILE" {
					r.file[v.Name] = e.Value
				}
			}
			for _, m := range pod.Containers[0].VolumeMounts {
				if m.MountPath != filepath.Dir(r.file[v.Name]) {
					continue
				}
				for _, vol := range pod.Volumes {
					if vol.Name == m.Name && vol.Secret != nil {
						r.mounted[v.Name] = vol.Secret.SecretName
					}
				}
			}
		}
	}
	return r
}

// By default the chart makes a seal key the services read (a key file of
// one key of 32 bytes), and mounts it in the frontends and the matchers
// at the file both are given; an existing Secret is mounted instead, and
// sealKeys.enabled false leaves the services without a key.
func TestChartSealKeysReachFrontendAndMatcher(t *testing.T) {
	base := deploytest.ValueSets()[0]
	r := renderSeal(t, base.Values(t))
	if r.secret == nil {
		t.Fatal("no seal keys Secret")
	}
	p := filepath.Join(t.TempDir(), "seal.keys")
	if err := os.WriteFile(p, r.secret.Data["seal.keys"], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := events.LoadSeals(p); err != nil {
		t.Fatalf("the chart's key file: %v", err)
	}
	// The pods roll with the key (a render that makes a new one: helm
	// template, a Secret made anew), so that frontends and matchers
	// never keep different keys.
	sum := fmt.Sprintf("%x", sha256.Sum256([]byte(base64.StdEncoding.EncodeToString(r.secret.Data["seal.keys"]))))
	for _, d := range []string{"qm-frontend", "qm-matcher"} {
		if r.file[d] != "/etc/quickmatch/seal/seal.keys" || r.mounted[d] != "qm-seal-keys" {
			t.Errorf("%s: SEAL_KEY_FILE %q from Secret %q", d, r.file[d], r.mounted[d])
		}
		if r.checksum[d] != sum {
			t.Errorf("%s: checksum/seal-keys %q, want the Secret's %q", d, r.checksum[d], sum)
		}
	}
	// A release upgraded with --reuse-values from before sealKeys existed
	// has no such value (review R9): the defaults hold.
	if r := renderSeal(t, base.With(t, map[string]any{"sealKeys": nil})); r.secret == nil || r.mounted["qm-matcher"] != "qm-seal-keys" {
		t.Errorf("without sealKeys: Secret %v, mounted %v", r.secret != nil, r.mounted)
	}
	r = renderSeal(t, base.With(t, map[string]any{"sealKeys": map[string]any{"existingSecret": "studio-seal"}}))
	if r.secret != nil || r.mounted["qm-frontend"] != "studio-seal" || r.mounted["qm-matcher"] != "studio-seal" || len(r.checksum) != 0 {
		t.Errorf("existingSecret: chart's Secret %v, mounted %v", r.secret != nil, r.mounted)
	}
	r = renderSeal(t, base.With(t, map[string]any{"sealKeys": map[string]any{"enabled": false}}))
	if r.secret != nil || len(r.file) != 0 || len(r.mounted) != 0 {
		t.Errorf("disabled: Secret %v, files %v, mounts %v", r.secret != nil, r.file, r.mounted)
	}
}
