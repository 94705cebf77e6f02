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
	return keysOf(d, "SEAL_KEY_FILE", "checksum/seal-keys")
}

// matchSealOf is sealOf for the match seal keys: MATCH_SEAL_KEY_FILE and
// checksum/match-seal-keys.
func matchSealOf(d *appsv1.Deployment) (file, secret, checksum string) {
	return keysOf(d, "MATCH_SEAL_KEY_FILE", "checksum/match-seal-keys")
}

// keysOf is what pod template d gives a key file: the value of env, the
// Secret mounted at its directory, and the annotation sum.
func keysOf(d *appsv1.Deployment, env, sum string) (file, secret, checksum string) {
	pod := d.Spec.Template.Spec
	for _, e := range pod.Containers[0].Env {
		if e.Name == env {
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
	return file, secret, d.Spec.Template.Annotations[sum]
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

// The matchers' own match seal key: made by default, mounted in the
// matchers alone at the file they are given, never in a frontend (whose
// NATS user may write claims: with the key it could seal a match of its
// own making), and not the frontends' seal key. An existing Secret is
// mounted instead; enabled false, or no matchers, makes none.
func TestChartMatchSealKeysReachTheMatchersAlone(t *testing.T) {
	base := deploytest.ValueSets()[0]
	r := render(t, base.Values(t))
	if r.matchSealKeys == nil || r.sealKeys == nil {
		t.Fatalf("Secrets: seal keys %v, match seal keys %v", r.sealKeys != nil, r.matchSealKeys != nil)
	}
	key := r.matchSealKeys.Data["seal.keys"]
	p := filepath.Join(t.TempDir(), "seal.keys")
	if err := os.WriteFile(p, key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := events.LoadSeals(p); err != nil {
		t.Fatalf("the chart's match seal key file: %v", err)
	}
	if string(key) == string(r.sealKeys.Data["seal.keys"]) {
		t.Fatal("the match seal key is the frontends' seal key")
	}
	sum := fmt.Sprintf("%x", sha256.Sum256([]byte(base64.StdEncoding.EncodeToString(key))))
	if file, secret, checksum := matchSealOf(r.matcherDeploy); file != "/etc/quickmatch/match-seal/seal.keys" || secret != "qm-match-seal-keys" || checksum != sum {
		t.Errorf("matcher: MATCH_SEAL_KEY_FILE %q from Secret %q, checksum %q; want the Secret's %q", file, secret, checksum, sum)
	}
	if file, _, checksum := sealOf(r.matcherDeploy); file != "/etc/quickmatch/seal/seal.keys" || checksum == "" {
		t.Errorf("matcher: its seal key moved: SEAL_KEY_FILE %q, checksum %q", file, checksum)
	}
	for _, vol := range r.frontendDeploy.Spec.Template.Spec.Volumes {
		if vol.Secret != nil && vol.Secret.SecretName == "qm-match-seal-keys" {
			t.Errorf("the frontend mounts the match seal keys (volume %s)", vol.Name)
		}
	}
	if file, _, checksum := matchSealOf(r.frontendDeploy); file != "" || checksum != "" {
		t.Errorf("frontend: MATCH_SEAL_KEY_FILE %q, checksum %q; want none", file, checksum)
	}
	r = render(t, base.With(t, map[string]any{"matchSealKeys": nil}))
	if _, secret, _ := matchSealOf(r.matcherDeploy); r.matchSealKeys == nil || secret != "qm-match-seal-keys" {
		t.Errorf("without matchSealKeys: Secret %v, matcher mounts %q", r.matchSealKeys != nil, secret)
	}
	r = render(t, base.With(t, map[string]any{"matchSealKeys": map[string]any{"existingSecret": "studio-match-seal"}}))
	if _, secret, checksum := matchSealOf(r.matcherDeploy); r.matchSealKeys != nil || secret != "studio-match-seal" || checksum != "" {
		t.Errorf("existingSecret: chart's Secret %v; matcher mounts %q, checksum %q", r.matchSealKeys != nil, secret, checksum)
	}
	r = render(t, base.With(t, map[string]any{"matchSealKeys": map[string]any{"enabled": false}}))
	if file, secret, checksum := matchSealOf(r.matcherDeploy); r.matchSealKeys != nil || file != "" || secret != "" || checksum != "" {
		t.Errorf("disabled: Secret %v; matcher file %q, mounts %q, checksum %q", r.matchSealKeys != nil, file, secret, checksum)
	}
	if _, _, checksum := sealOf(r.matcherDeploy); checksum == "" {
		t.Error("disabled match seal keys took the seal keys' checksum with them")
	}
	// The frontends' Secret named for the matchers' own key is refused:
	// the frontends would hold it.
	same := map[string]any{"existingSecret": "studio-seal"}
	if _, _, _, err := deploytest.Render(deploytest.Load(t), "quickmatch", base.With(t, map[string]any{"sealKeys": same, "matchSealKeys": same})); err == nil ||
		!strings.Contains(err.Error(), "a Secret of its own") {
		t.Errorf("one existing Secret for both key sets: %v; want refused", err)
	}
	r = render(t, base.With(t, map[string]any{"matcher": map[string]any{"enabled": false}}))
	if r.matchSealKeys != nil || r.sealKeys == nil {
		t.Errorf("no matchers: match seal keys Secret %v, seal keys %v; want none, and the frontends'", r.matchSealKeys != nil, r.sealKeys != nil)
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
