package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// writeVulnDB writes a Go vulnerability database (the v1 layout govulncheck
// reads) holding vulns, module path -> symbol of that module. Each entry has
// the database_specific.url every vuln.go.dev entry has: govulncheck v1.1.4
// dereferences it when it reports a finding, and without it crashed, which
// the gate counted as a finding where the panic's exit status survived and
// passed where it did not (a CI run).
func writeVulnDB(t *testing.T, vulns map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	must := func(path, body string) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const when = "2026-11-01T00:00:00Z"
	var modules, ids []string
	n := 0
	for mod, symbol := range vulns {
		n++
		id := fmt.Sprintf("GO-2099-%04d", n)
		modules = append(modules, fmt.Sprintf(`{"path":%q,"vulns":[{"id":%q,"modified":%q,"fixed":"99.0.0"}]}`, mod, id, when))
		ids = append(ids, fmt.Sprintf(`{"id":%q,"modified":%q,"aliases":[]}`, id, when))
		pkg, sym, _ := strings.Cut(symbol, ":")
		must(filepath.Join(dir, "ID", id+".json"), fmt.Sprintf(`{"schema_version":"1.3.1","id":%q,"modified":%q,"published":%q,
"summary":"planted by the deploy tests","details":"planted","affected":[{"package":{"name":%q,"ecosystem":"Go"},
"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"99.0.0"}]}],
"ecosystem_specific":{"imports":[{"path":%q,"symbols":[%q]}]}}],
"database_specific":{"url":"https://pkg.go.dev/vuln/%s"}}`, id, when, when, mod, pkg, sym, id))
	}
	must(filepath.Join(dir, "index", "db.json"), fmt.Sprintf(`{"modified":%q}`, when))
	must(filepath.Join(dir, "index", "modules.json"), "["+strings.Join(modules, ",")+"]")
	must(filepath.Join(dir, "index", "vulns.json"), "["+strings.Join(ids, ",")+"]")
	return "file://" + dir
}

// make vulncheck's script passes with nothing known against our
// dependencies and fails when a vulnerability is reachable from our code:
// the gate works; what it finds depends on the database CI reaches.
func TestVulncheckGate(t *testing.T) {
	testkit.Env(t, "QUICKMATCH_GOVULNCHECK", "make test builds bin/govulncheck, which tools/vulncheck.sh runs, and sets it")
	root := deploytest.Root(t)
	run := func(db string) (string, error) {
		cmd := exec.Command(filepath.Join(root, "tools", "vulncheck.sh"), "services/game")
		cmd.Env = append(os.Environ(), "VULNDB="+db)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(writeVulnDB(t, map[string]string{"example.com/not-a-dependency": "example.com/not-a-dependency:F"})); err != nil {
		t.Fatalf("clean database: %v\n%s", err, out)
	}
	// The game server upgrades every WebSocket with gorilla/websocket.
	out, err := run(writeVulnDB(t, map[string]string{"github.com/gorilla/websocket": "github.com/gorilla/websocket:Upgrader.Upgrade"}))
	// The summary line is printed only by a scan that ran to the end: a
	// crash after naming the vulnerability is not the gate working.
	if err == nil || !strings.Contains(out, "GO-2099-0001") || !strings.Contains(out, "Your code is affected by 1 vulnerability") {
		t.Fatalf("a reachable vulnerability passed the gate: %v\n%s", err, out)
	}
}
