package pool

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// testAttributes declares one attribute of each kind, as a game would.
const testAttributes = `"attributes": {
	"platform": {"kind": "string", "values": ["pc", "xbox", "ps5"]},
	"maps": {"kind": "set", "values": ["dust", "nuke", "inferno", "mirage", "anubis"]},
	"level": {"kind": "number", "min": 1, "max": 100},
	"newbie": {"kind": "tag"}
}`

// ruleSet parses a rule set of testAttributes and the modes given (JSON
// objects, with teams, team_size, max_wait and skill_window defaulted to
// a 1v1 whose skill window is 100 + 50/s up to 1000).
func ruleSet(t testing.TB, modes ...string) *rules.Set {
	t.Helper()
	var all []string
	for _, m := range modes {
		var mode map[string]any
		if err := json.Unmarshal([]byte(`{`+m+`}`), &mode); err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]any{"teams": 2, "team_size": 1, "max_wait": "5m",
			"skill_window": map[string]int{"initial": 100, "per_second": 50, "max": 1000}} {
			if _, ok := mode[k]; !ok {
				mode[k] = v
			}
		}
		b, err := json.Marshal(mode)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, string(b))
	}
	s, err := rules.Parse([]byte(`{` + testAttributes + `, "modes": [` + strings.Join(all, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ruleMode(t testing.TB, s *rules.Set, name string) *rules.Mode {
	t.Helper()
	m, ok := s.Mode(name)
	if !ok {
		t.Fatalf("no mode %q", name)
	}
	return m
}

// attrs decodes a ticket's attributes written as JSON.
func attrs(t testing.TB, js string) *events.Attributes {
	t.Helper()
	if js == "" {
		return nil
	}
	var a events.Attributes
	if err := json.Unmarshal([]byte(js), &a); err != nil {
		t.Fatal(err)
	}
	return &a
}

// with gives e the attributes js, compiled for m.
func with(t testing.TB, m *rules.Mode, e *Entry, js string) *Entry {
	t.Helper()
	if err := e.SetAttributes(m, attrs(t, js)); err != nil {
		t.Fatal(err)
	}
	return e
}

var fitModes = []string{
	`"name": "crossplay", "rules": [{"kind": "equal", "attribute": "platform", "drop_after": "30s"}]`,
	`"name": "maps", "rules": [{"kind": "overlap", "attribute": "maps"}]`,
	`"name": "level", "rules": [{"kind": "distance", "attribute": "level", "limit": {"initial": 5, "per_second": 1, "max": 20}}]`,
	`"name": "level-drop", "rules": [{"kind": "distance", "attribute": "level", "limit": {"initial": 5, "per_second": 1, "max": 20}, "drop_after": "30s"}]`,
	`"name": "newbie", "rules": [{"kind": "equal", "attribute": "newbie"}]`,
	`"name": "crossplay-2v2", "team_size": 2, "rules": [{"kind": "equal", "attribute": "platform"}]`,
}

// TestRulesThroughMatchAround: every rule kind, and its expansion over the
// wait, judged where matches are formed.
func TestRulesThroughMatchAround(t *testing.T) {
	t.Parallel()
	set := ruleSet(t, fitModes...)
	type tick struct {
		id     string
		skill  int
		waited time.Duration
		attrs  string
	}
	const pc, xbox = `{"strings":{"platform":"pc"}}`, `{"strings":{"platform":"xbox"}}`
	tests := []struct {
		name    string
		mode    string
		waiting []tick
		anchor  tick
		want    string
	}{
		{"crossplay: the same platform, though further in skill", "crossplay",
			[]tick{{"xbox", 1505, 0, xbox}, {"pc", 1550, 0, pc}}, tick{"a", 1500, 0, pc}, "a | pc"},
		{"crossplay: platforms kept apart", "crossplay",
			[]tick{{"xbox", 1500, 10 * time.Second, xbox}}, tick{"a", 1500, 0, pc}, "none"},
		{"crossplay: no platform is a value of its own", "crossplay",
			[]tick{{"none", 1500, 0, ""}}, tick{"a", 1500, 0, pc}, "none"},
		{"crossplay: dropped after 30s of the waiting ticket", "crossplay",
			[]tick{{"xbox", 1500, 30 * time.Second, xbox}}, tick{"a", 1500, 0, pc}, "a | xbox"},
		{"crossplay: dropped after 30s of the anchor", "crossplay",
			[]tick{{"xbox", 1500, 0, xbox}}, tick{"a", 1500, 30 * time.Second, pc}, "a | xbox"},
		{"crossplay: an older ticket of another platform, once dropped, in another bucket", "crossplay",
			[]tick{{"xbox-old", 1560, 31 * time.Second, xbox}, {"xbox", 1500, 0, xbox}}, tick{"a", 1500, 0, pc}, "a | xbox-old"},
		{"maps: a shared map", "maps",
			[]tick{{"inferno", 1500, 0, `{"sets":{"maps":["inferno"]}}`}, {"nuke", 1510, 0, `{"sets":{"maps":["nuke","mirage"]}}`}},
			tick{"a", 1500, 0, `{"sets":{"maps":["dust","nuke"]}}`}, "a | nuke"},
		{"maps: none shared", "maps",
			[]tick{{"inferno", 1500, 0, `{"sets":{"maps":["inferno"]}}`}}, tick{"a", 1500, 0, `{"sets":{"maps":["dust"]}}`}, "none"},
		{"maps: no preference takes any", "maps",
			[]tick{{"any", 1500, 0, ""}}, tick{"a", 1500, 0, `{"sets":{"maps":["dust"]}}`}, "a | any"},
		{"level: within the limit", "level",
			[]tick{{"far", 1500, 0, `{"numbers":{"level":36}}`}, {"near", 1520, 0, `{"numbers":{"level":35}}`}},
			tick{"a", 1500, 0, `{"numbers":{"level":30}}`}, "a | near"},
		{"level: beyond the limit", "level",
			[]tick{{"x", 1500, 0, `{"numbers":{"level":40}}`}}, tick{"a", 1500, 0, `{"numbers":{"level":30}}`}, "none"},
		{"level: the limit widens with the longer wait", "level",
			[]tick{{"x", 1500, 5 * time.Second, `{"numbers":{"level":40}}`}}, tick{"a", 1500, 0, `{"numbers":{"level":30}}`}, "a | x"},
		{"level: the limit stops at max", "level",
			[]tick{{"x", 1500, time.Hour, `{"numbers":{"level":51}}`}}, tick{"a", 1500, 0, `{"numbers":{"level":30}}`}, "none"},
		{"level: bands apart, until the rule drops", "level-drop",
			[]tick{{"young", 1500, 29 * time.Second, `{"numbers":{"level":90}}`}, {"old", 1560, 30 * time.Second, `{"numbers":{"level":95}}`}},
			tick{"a", 1500, 0, `{"numbers":{"level":10}}`}, "a | old"},
		{"level: the next band, within the limit", "level",
			[]tick{{"x", 1500, 0, `{"numbers":{"level":40}}`}}, tick{"a", 1500, 0, `{"numbers":{"level":39.5}}`}, "a | x"},
		{"level: a ticket without a level is not held to it", "level",
			[]tick{{"x", 1500, 0, ""}}, tick{"a", 1500, 0, `{"numbers":{"level":30}}`}, "a | x"},
		{"newbie: tagged with tagged", "newbie",
			[]tick{{"pro", 1500, 0, ""}, {"new", 1540, 0, `{"tags":["newbie"]}`}}, tick{"a", 1500, 0, `{"tags":["newbie"]}`}, "a | new"},
		{"newbie: untagged never with tagged", "newbie",
			[]tick{{"new", 1500, 0, `{"tags":["newbie"]}`}}, tick{"a", 1500, 0, ""}, "none"},
		{"skill still holds", "crossplay",
			[]tick{{"pc", 1700, 0, pc}}, tick{"a", 1500, 0, pc}, "none"},
		{"2v2: every ticket fits the anchor", "crossplay-2v2",
			[]tick{{"x1", 1500, 0, xbox}, {"p1", 1510, 0, pc}, {"x2", 1500, 0, xbox}, {"p2", 1520, 0, pc}, {"p3", 1530, 0, pc}},
			tick{"a", 1500, 0, pc}, "a+p3 | p1+p2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ruleMode(t, set, tt.mode)
			p := New(m)
			for _, w := range tt.waiting {
				p.Add(with(t, m, tk(w.id, w.skill, w.waited), w.attrs))
			}
			anchor := with(t, m, tk(tt.anchor.id, tt.anchor.skill, tt.anchor.waited), tt.anchor.attrs)
			p.Add(anchor)
			if got := p.MatchAround(anchor, t0); ids(got) != tt.want {
				t.Fatalf("got %s, want %s", ids(got), tt.want)
			}
		})
	}
}

func TestBalance(t *testing.T) {
	t.Parallel()
	set := ruleSet(t, `"name": "skill", "team_size": 2`, `"name": "none", "team_size": 2, "balance": "none"`)
	tests := []struct{ mode, want string }{
		// Skills 1000, 1010, 1020, 1030 created in that order.
		{"skill", "a+d | b+c"},
		{"none", "a+b | c+d"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			p := New(ruleMode(t, set, tt.mode))
			for i, id := range []string{"a", "b", "c"} {
				p.Add(tk(id, 1000+10*i, time.Duration(4-i)*time.Second))
			}
			anchor := tk("d", 1030, time.Second)
			p.Add(anchor)
			if got := p.MatchAround(anchor, t0); ids(got) != tt.want {
				t.Fatalf("got %s, want %s", ids(got), tt.want)
			}
		})
	}
}

// TestBalanceNoneKeepsParties: first-fit in creation order cannot always
// pack parties; the teams MatchAround found room in are kept then.
func TestBalanceNoneKeepsParties(t *testing.T) {
	t.Parallel()
	p := New(ruleMode(t, ruleSet(t, `"name": "none", "team_size": 3, "balance": "none"`), "none"))
	// Created s1, s2, d1, d2; d1 came to this pool first (a redelivery).
	p.Add(tk("d1", 1500, 2*time.Second, "x1", "x2"))
	p.Add(tk("s1", 1500, 4*time.Second))
	p.Add(tk("s2", 1500, 3*time.Second))
	anchor := tk("d2", 1500, time.Second, "y1", "y2")
	p.Add(anchor)
	got := p.MatchAround(anchor, t0)
	if ids(got) != "d1+s2 | d2+s1" && ids(got) != "d1+s1 | d2+s2" { // either packing
		t.Fatalf("got %s", ids(got))
	}
}

func TestSetAttributesRoundTrip(t *testing.T) {
	t.Parallel()
	m := ruleMode(t, ruleSet(t, fitModes...), "crossplay")
	e := with(t, m, tk("a", 1500, 0), `{"tags":["newbie"],"strings":{"platform":"pc"},"sets":{"maps":["nuke","dust"]},"numbers":{"level":30}}`)
	if want := `{"strings":{"platform":"pc"},"sets":{"maps":["nuke","dust"]},"numbers":{"level":30},"tags":["newbie"]}`; e.Attrs != want {
		t.Fatalf("Attrs %s, want %s", e.Attrs, want)
	}
	got, err := e.Attributes()
	if err != nil || !reflect.DeepEqual(got, attrs(t, e.Attrs)) {
		t.Fatalf("Attributes %+v, %v", got, err)
	}
	e = with(t, m, tk("b", 1500, 0), `{}`)
	if got, err := e.Attributes(); e.Attrs != "" || got != nil || err != nil {
		t.Fatalf("none: Attrs %q, Attributes %v, %v", e.Attrs, got, err)
	}
}

// TestSetModeRecompiles: a reloaded rule set changes what fits for the
// tickets already waiting, and for one compiled before the reload.
func TestSetModeRecompiles(t *testing.T) {
	t.Parallel()
	const pc, xbox = `{"strings":{"platform":"pc"},"sets":{"maps":["dust"]}}`, `{"strings":{"platform":"xbox"},"sets":{"maps":["dust"]}}`
	open := ruleMode(t, ruleSet(t, `"name": "m"`), "m")
	apart := ruleMode(t, ruleSet(t, `"name": "m", "rules": [{"kind": "equal", "attribute": "platform"}]`), "m")
	fill := func(m *rules.Mode) (*Pool, *Entry) {
		p := New(m)
		p.Add(with(t, m, tk("x", 1500, 0), xbox))
		return p, with(t, m, tk("a", 1500, 0), pc)
	}

	p, a := fill(open)
	p.SetMode(apart)
	p.Add(a) // compiled for the mode before the reload
	if got := p.MatchAround(a, t0); got != nil || p.Mode() != apart {
		t.Fatalf("rule added: got %s", ids(got))
	}
	p.SetMode(open)
	if got := p.MatchAround(a, t0); ids(got) != "a | x" {
		t.Fatalf("rule removed: got %s", ids(got))
	}

	// The same rules over a set declared in another order: the members'
	// bits move, so the waiting tickets are compiled again.
	const maps = `"rules": [{"kind": "overlap", "attribute": "maps"}]`
	before := ruleMode(t, ruleSet(t, `"name": "m", `+maps), "m")
	s, err := rules.Parse([]byte(`{"attributes": {"maps": {"kind": "set", "values": ["anubis", "mirage", "inferno", "nuke", "dust"]}},
		"modes": [{"name": "m", "teams": 2, "team_size": 1, "max_wait": "5m", ` + maps + `}]}`))
	if err != nil {
		t.Fatal(err)
	}
	p, a = fill(before)
	p.SetMode(ruleMode(t, s, "m"))
	p.Add(with(t, p.Mode(), a, pc))
	if got := p.MatchAround(a, t0); ids(got) != "a | x" {
		t.Fatalf("set reordered: got %s", ids(got))
	}
}

// TestSetModeKeepsValuesWhenRulesAlike: a reload that changes no rule of
// the mode (here its max wait) compiles nothing again.
func TestSetModeKeepsValuesWhenRulesAlike(t *testing.T) {
	t.Parallel()
	const r = `"rules": [{"kind": "equal", "attribute": "platform"}]`
	m1 := ruleMode(t, ruleSet(t, `"name": "m", `+r), "m")
	m2 := ruleMode(t, ruleSet(t, `"name": "m", "max_wait": "9m", `+r), "m")
	p := New(m1)
	e := with(t, m1, tk("x", 1500, 0), `{"strings":{"platform":"pc"}}`)
	p.Add(e)
	v := &e.Values[0]
	p.SetMode(m2)
	if &e.Values[0] != v || p.Mode() != m2 {
		t.Fatal("values compiled again for alike rules")
	}
}

// TestIndexAgreesWithFits checks the scan's early stops against a look at
// every waiting ticket: in a pool of many classes, waits and attributes,
// MatchAround finds a partner exactly when one fits, and emptied classes
// leave the index.
func TestIndexAgreesWithFits(t *testing.T) {
	t.Parallel()
	m := ruleMode(t, ruleSet(t, `"name": "all", "rules": [
		{"kind": "equal", "attribute": "platform", "drop_after": "20s"},
		{"kind": "equal", "attribute": "newbie"},
		{"kind": "overlap", "attribute": "maps", "drop_after": "40s"},
		{"kind": "distance", "attribute": "level", "limit": {"initial": 5, "per_second": 1, "max": 30}, "drop_after": "50s"}]`), "all")
	rng := rand.New(rand.NewPCG(3, 4))
	p := New(m)
	const n = 600
	for i := range n {
		// Oldest first, as tickets arrive.
		e := tk(fmt.Sprint(i), 1000+rng.IntN(2000), time.Duration(n-i)*100*time.Millisecond)
		if err := e.SetAttributes(m, randomAttrs(rng)); err != nil {
			t.Fatal(err)
		}
		p.Add(e)
	}
	matched := 0
	for _, anchor := range p.Oldest(n) {
		if !p.Contains(anchor) {
			continue
		}
		fit := false
		p.Each(func(e *Entry) { fit = fit || e != anchor && p.fits(anchor, e, t0) })
		got := p.MatchAround(anchor, t0)
		if (got != nil) != fit {
			t.Fatalf("anchor %s: matched %s, but a fitting ticket waits: %v", anchor.TicketID, ids(got), fit)
		}
		if got != nil {
			matched++
			for _, team := range got {
				if e := team[0]; e != anchor && !p.fits(anchor, e, t0) {
					t.Fatalf("anchor %s matched with %s, which does not fit", anchor.TicketID, e.TicketID)
				}
			}
		}
	}
	t.Logf("%d matches from %d tickets", matched, n)
	if matched == 0 || matched == n/2 {
		t.Fatalf("%d matches: the case needs both matches and misses", matched)
	}
	for _, e := range p.Oldest(n) {
		p.Remove(e.TicketID)
	}
	if p.Len() != 0 || p.idx.count() != 0 || len(p.idx.classes) != 0 {
		t.Fatalf("left: %d tickets, %d sublists, %d classes", p.Len(), p.idx.count(), len(p.idx.classes))
	}
}

// randomAttrs are a ticket's attributes drawn as a game's players might
// have them: one of three platforms, some of five maps (none: no
// preference), a level in [1, 100], one newbie in ten, and one ticket in
// twenty that says nothing.
func randomAttrs(rng *rand.Rand) *events.Attributes {
	if rng.IntN(20) == 0 {
		return nil
	}
	a := &events.Attributes{
		Strings: map[string]string{"platform": testPlatforms[rng.IntN(len(testPlatforms))]},
		Numbers: map[string]float64{"level": float64(1 + rng.IntN(100))},
	}
	var maps []string
	for _, m := range testMaps {
		if rng.IntN(2) == 0 {
			maps = append(maps, m)
		}
	}
	if len(maps) > 0 {
		a.Sets = map[string][]string{"maps": maps}
	}
	if rng.IntN(10) == 0 {
		a.Tags = []string{"newbie"}
	}
	return a
}

var (
	testPlatforms = []string{"pc", "xbox", "ps5"}
	testMaps      = []string{"dust", "nuke", "inferno", "mirage", "anubis"}
)
