package deploy

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// sealOf is what pod template d gives the seal keys: SEAL_KEY_FILE, the
// Secret mounted at its directory, and the checksum/seal-keys annotation.
func sealOf(d *appsv1.Deployment) (file, secret, checksum string) {
	pod := d.Spec.Template.Spec
	for _, e := range pod.Containers[0].Env {
		if e.Name == "SEAL_KEY_FILE" {
			file = e.Value
		}
	}
	for _, m := range pod.Containers[0].VolumeMounts {
		for _, vol := range pod.Volumes {
			if file != "" && m.MountPath == filepath.Dir(file) && vol.Name == m.Name && vol.Secret != nil {
				secret = vol.Secret.SecretName
			}
		}
	}
	return file, secret, d.Spec.Template.Annotations["checksum/seal-keys"]
}

// By default the chart makes a seal key the services read (a key file of
// one key of 32 bytes), and mounts it in the frontends and the matchers
// at the file both are given; an existing Secret is mounted instead, and
// sealKeys.enabled false leaves the services without a key.
func TestChartSealKeysReachFrontendAndMatcher(t *testing.T) {
	base := deploytest.ValueSets()[0]
	r := render(t, base.Values(t))
	if r.sealKeys == nil {
		t.Fatal("no seal keys Secret")
	}
	p := filepath.Join(t.TempDir(), "seal.keys")
	if err := os.WriteFile(p, r.sealKeys.Data["seal.keys"], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := events.LoadSeals(p); err != nil {
		t.Fatalf("the chart's key file: %v", err)
	}
	// The pods roll with the key (a render that makes a new one: helm
	// template, a Secret made anew), so that frontends and matchers
	// never keep different keys.
	sum := fmt.Sprintf("%x", sha256.Sum256([]byte(base64.StdEncoding.EncodeToString(r.sealKeys.Data["seal.keys"]))))
	for _, d := range []*appsv1.Deployment{r.frontendDeploy, r.matcherDeploy} {
		if file, secret, checksum := sealOf(d); file != "/etc/quickmatch/seal/seal.keys" || secret != "qm-seal-keys" || checksum != sum {
			t.Errorf("%s: SEAL_KEY_FILE %q from Secret %q, checksum %q; want the Secret's %q", d.Name, file, secret, checksum, sum)
		}
	}
	// A release upgraded with --reuse-values from before sealKeys existed
	// has no such value (review R9): the defaults hold.
	r = render(t, base.With(t, map[string]any{"sealKeys": nil}))
	if _, secret, _ := sealOf(r.matcherDeploy); r.sealKeys == nil || secret != "qm-seal-keys" {
		t.Errorf("without sealKeys: Secret %v, matcher mounts %q", r.sealKeys != nil, secret)
	}
	r = render(t, base.With(t, map[string]any{"sealKeys": map[string]any{"existingSecret": "studio-seal"}}))
	for _, d := range []*appsv1.Deployment{r.frontendDeploy, r.matcherDeploy} {
		if _, secret, checksum := sealOf(d); r.sealKeys != nil || secret != "studio-seal" || checksum != "" {
			t.Errorf("existingSecret: chart's Secret %v; %s mounts %q, checksum %q", r.sealKeys != nil, d.Name, secret, checksum)
		}
	}
	r = render(t, base.With(t, map[string]any{"sealKeys": map[string]any{"enabled": false}}))
	for _, d := range []*appsv1.Deployment{r.frontendDeploy, r.matcherDeploy} {
		if file, secret, checksum := sealOf(d); r.sealKeys != nil || file != "" || secret != "" || checksum != "" {
			t.Errorf("disabled: Secret %v; %s file %q, mounts %q, checksum %q", r.sealKeys != nil, d.Name, file, secret, checksum)
		}
	}
}

// A release that runs the frontends without the matchers, or the
// matchers without the frontends, and makes its own seal key is told in
// its notes that the other release's key differs (every seal would fail,
// and every ticket be read); with an existing Secret, or with both kinds
// of pod, nothing is said.
func TestChartNotesWarnOfASplitReleasesKey(t *testing.T) {
	base := deploytest.ValueSets()[0]
	ch := deploytest.Load(t)
	notes := func(extra map[string]any) string {
		t.Helper()
		_, _, n, err := deploytest.Render(ch, "quickmatch", base.With(t, extra))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	warned := func(n string) bool { return strings.Contains(n, "sealKeys.existingSecret in both releases") }
	for name, extra := range map[string]map[string]any{
		"frontends alone": {"matcher": map[string]any{"enabled": false}},
		"matchers alone":  {"frontend": map[string]any{"enabled": false}},
	} {
		if n := notes(extra); !warned(n) {
			t.Errorf("%s: no warning of the split key; notes:\n%s", name, n)
		}
		extra["sealKeys"] = map[string]any{"existingSecret": "studio-seal"}
		if n := notes(extra); warned(n) {
			t.Errorf("%s with an existing Secret: warned; notes:\n%s", name, n)
		}
	}
	if n := notes(nil); warned(n) {
		t.Errorf("one release of both: warned; notes:\n%s", n)
	}
}
