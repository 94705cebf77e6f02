package deploy

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
)

var (
	metricDecl = regexp.MustCompile(`Name:\s+"(quickmatch_[a-z_]+)"`)
	metricUse  = regexp.MustCompile(`quickmatch_[a-z_]+`)
)

// exported is every metric the services declare, by name, with its
// histogram series.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(deploytest.Root(t), "services"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricDecl.FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = true
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[m[1]+suffix] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// The dashboard is valid Grafana JSON whose every query names metrics the
// services export, and every service's metrics are on it.
func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(deploytest.Root(t), "deploy", "grafana", "quickmatch.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard %q uid %q with %d panels", dash.Title, dash.UID, len(dash.Panels))
	}
	have := exported(t)
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			for _, m := range metricUse.FindAllString(target.Expr, -1) {
				used[strings.TrimSuffix(m, "_bucket")] = true
				if !have[m] {
					t.Errorf("panel %q queries %s, which no service exports", p.Title, m)
				}
			}
		}
	}
	for name := range have {
		if !strings.HasSuffix(name, "_bucket") && !strings.HasSuffix(name, "_sum") && !strings.HasSuffix(name, "_count") && !used[name] {
			t.Errorf("%s is exported but not on the dashboard", name)
		}
	}
}
