package rules

import (
	"testing"
)

// TestVersion: a rule set's version names its content, not its spelling.
// Files that say the same (other whitespace, other key order, a default
// written out or left to the default) have one version, so a frontend and
// a matcher on the same rules never count as apart; any change a ticket's
// check or its matching could see gives another.
func TestVersion(t *testing.T) {
	t.Parallel()
	const base = `{"attributes":{"platform":{"kind":"string","values":["pc","xbox"]},"level":{"kind":"number","min":1}},
		"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"}]}`
	same := []string{
		base,
		`{"modes":[{"max_wait":"60s","team_size":1,"teams":2,"name":"1v1"}],
		  "attributes":{"level":{"min":1,"kind":"number"},"platform":{"values":["pc","xbox"],"kind":"string"}}}`,
		`{"attributes":{"platform":{"kind":"string","values":["pc","xbox"]},"level":{"kind":"number","min":1}},
		  "modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m","balance":"skill",
		  "skill_window":{"initial":100,"per_second":25,"max":1000},"latency_budget_ms":{"initial":60,"per_second":5,"max":200}}]}`,
	}
	other := map[string]string{
		"a mode added": `{"attributes":{"platform":{"kind":"string","values":["pc","xbox"]},"level":{"kind":"number","min":1}},
			"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"},{"name":"2v2","teams":2,"team_size":2,"max_wait":"1m"}]}`,
		"a value allowed": `{"attributes":{"platform":{"kind":"string","values":["pc","xbox","ps5"]},"level":{"kind":"number","min":1}},
			"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"}]}`,
		"an attribute removed": `{"attributes":{"platform":{"kind":"string","values":["pc","xbox"]}},
			"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"}]}`,
		"a bound changed": `{"attributes":{"platform":{"kind":"string","values":["pc","xbox"]},"level":{"kind":"number","min":2}},
			"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"}]}`,
		"a wait changed": `{"attributes":{"platform":{"kind":"string","values":["pc","xbox"]},"level":{"kind":"number","min":1}},
			"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"2m"}]}`,
		"a rule added": `{"attributes":{"platform":{"kind":"string","values":["pc","xbox"]},"level":{"kind":"number","min":1}},
			"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m","rules":[{"kind":"equal","attribute":"platform"}]}]}`,
	}
	version := func(body string) string {
		t.Helper()
		s, err := Parse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		v := s.Version()
		if v == "" || v != s.Version() {
			t.Fatalf("Version = %q then %q", v, s.Version())
		}
		return v
	}
	want := version(base)
	for i, body := range same {
		if v := version(body); v != want {
			t.Errorf("same content #%d: version %s, want %s", i, v, want)
		}
	}
	seen := map[string]string{want: "base"}
	for name, body := range other {
		v := version(body)
		if was, dup := seen[v]; dup {
			t.Errorf("%s: version %s, the same as %s", name, v, was)
		}
		seen[v] = name
	}
	if d := Default().Version(); d != Default().Version() || seen[d] != "" {
		t.Errorf("Default's version %s: not stable, or another set's", d)
	}
}
