package deploy

import (
	"path"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
)

// The chart gives the join token private key to the allocator alone, from
// a Secret mounted where JOIN_KEY_FILE points, and the public keys to the
// game servers, from a ConfigMap mounted as the directory JOIN_PUBLIC_KEYS
// names (a volume, not an env var or a subPath, so a rotation reaches
// running game servers). In a game cluster no private key is rendered.
func TestChartJoinKeys(t *testing.T) {
	ch := deploytest.Load(t)
	private, public := deploytest.JoinKeys()
	for _, vs := range deploytest.ValueSets() {
		t.Run(vs.Name, func(t *testing.T) {
			objects, _, _, err := deploytest.Render(ch, "quickmatch", vs.Values(t))
			if err != nil {
				t.Fatal(err)
			}
			secrets, configMaps := map[string]*corev1.Secret{}, map[string]*corev1.ConfigMap{}
			var pods []corev1.PodSpec
			for _, o := range objects {
				v, err := deploytest.Typed(o)
				if err != nil {
					t.Fatal(err)
				}
				switch v := v.(type) {
				case *corev1.Secret:
					secrets[v.Name] = v
				case *corev1.ConfigMap:
					configMaps[v.Name] = v
				case *appsv1.Deployment:
					pods = append(pods, v.Spec.Template.Spec)
				case *deploytest.Fleet:
					pods = append(pods, v.Spec.Template.Spec.Template.Spec)
				}
			}
			for _, pod := range pods {
				c := pod.Containers[0]
				env := map[string]string{}
				for _, e := range c.Env {
					env[e.Name] = e.Value
				}
				mountOf := func(dir string) *corev1.Volume {
					for _, m := range c.VolumeMounts {
						if m.MountPath == dir && m.SubPath == "" {
							for i := range pod.Volumes {
								if pod.Volumes[i].Name == m.Name {
									return &pod.Volumes[i]
								}
							}
						}
					}
					return nil
				}
				switch c.Name {
				case "allocator":
					file := env["JOIN_KEY_FILE"]
					v := mountOf(path.Dir(file))
					if v == nil || v.Secret == nil || len(v.Secret.Items) != 1 || v.Secret.Items[0].Path != path.Base(file) {
						t.Fatalf("allocator: JOIN_KEY_FILE %q is not a mounted Secret key: %+v", file, v)
					}
					if s, ok := secrets[v.Secret.SecretName]; ok && s.StringData[v.Secret.Items[0].Key] != private {
						t.Errorf("allocator: Secret %s holds another key", s.Name)
					}
				case "game":
					dir := env["JOIN_PUBLIC_KEYS"]
					v := mountOf(dir)
					if v == nil || v.ConfigMap == nil {
						t.Fatalf("game: JOIN_PUBLIC_KEYS %q is not a mounted ConfigMap: %+v", dir, v)
					}
					if cm, ok := configMaps[v.ConfigMap.Name]; ok {
						for k, pem := range cm.Data {
							if pem != public || !strings.HasSuffix(k, ".pem") {
								t.Errorf("game: ConfigMap %s key %s holds %q", cm.Name, k, pem)
							}
						}
					}
					for _, vol := range pod.Volumes {
						if vol.Secret != nil {
							t.Errorf("game: mounts Secret %s", vol.Secret.SecretName)
						}
					}
				}
			}
			for _, s := range secrets {
				for _, v := range s.StringData {
					if strings.Contains(v, "PRIVATE KEY") && vs.Name == "game-cluster" {
						t.Errorf("a game cluster renders the private key in %s", s.Name)
					}
				}
			}
		})
	}
}
