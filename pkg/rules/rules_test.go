package rules

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testAttrs declares one attribute of each kind, for the tests' rule sets.
const testAttrs = `"platform":{"kind":"string","values":["pc","xbox"]},"build":{"kind":"string"},` +
	`"maps":{"kind":"set","values":["dust","nuke","inferno"]},"level":{"kind":"number","min":1,"max":100},"newbie":{"kind":"tag"}`

// ruleSet is a rule set file declaring attrs (the inside of "attributes")
// with one mode, "m": 2 teams of 1 waiting at most 1m, plus extra (more
// fields of the mode, each after a comma; a field given again replaces the
// first, as encoding/json keeps the last).
func ruleSet(attrs, extra string) string {
	return `{"attributes":{` + attrs + `},"modes":[{"name":"m","teams":2,"team_size":1,"max_wait":"1m"` + extra + `}]}`
}

// quoted is n distinct values "v0".."v<n-1>", comma-separated.
func quoted(n int) string {
	vs := make([]string, n)
	for i := range vs {
		vs[i] = fmt.Sprintf("%q", fmt.Sprintf("v%d", i))
	}
	return strings.Join(vs, ",")
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, s *Set)
	}{
		{name: "each rule kind on the kinds it compares", in: ruleSet(testAttrs, `,"rules":[`+
			`{"kind":"equal","attribute":"platform"},{"kind":"equal","attribute":"newbie"},`+
			`{"kind":"overlap","attribute":"maps"},{"kind":"distance","attribute":"level","limit":{"initial":1,"per_second":1,"max":9}}]`),
			check: func(t *testing.T, s *Set) {
				m, _ := s.Mode("m")
				if len(m.Rules) != 4 || m.Rules[3].Limit == nil || *m.Rules[3].Limit != (Widening{1, 1, 9}) {
					t.Errorf("rules = %+v", m.Rules)
				}
			}},
		{name: "a set of 64 values", in: ruleSet(`"s":{"kind":"set","values":[`+quoted(MaxSetValues)+`]}`, "")},
		{name: "a string of any value", in: ruleSet(`"s":{"kind":"string","values":[]}`, "")},
		{name: "100 players", in: ruleSet("", `,"teams":50,"team_size":2`)},
		{name: "a free-for-all of 100", in: ruleSet("", `,"teams":100,"team_size":1`)},
		{name: "max_wait of the ticket max age", in: ruleSet("", `,"max_wait":"1h"`)},
		{name: "an exact distance", in: ruleSet(testAttrs, `,"rules":[{"kind":"distance","attribute":"level","limit":{}}]`)},
		{name: "drop_after zero keeps the rule", in: ruleSet(testAttrs, `,"rules":[{"kind":"equal","attribute":"build","drop_after":"0s"}]`),
			check: func(t *testing.T, s *Set) {
				m, _ := s.Mode("m")
				if m.Rules[0].DropAfter != 0 {
					t.Errorf("drop_after = %v", m.Rules[0].DropAfter)
				}
			}},
		{name: "defaults filled", in: ruleSet("", `,"match_function":{"service":"mf"}`), check: func(t *testing.T, s *Set) {
			m, _ := s.Mode("m")
			want := MatchFunction{Service: "mf", Timeout: Duration(DefaultFunctionTimeout), OnFailure: OnFailureFallback, MaxCandidates: DefaultMaxCandidates}
			if m.Skill != DefaultSkill || m.LatencyMS != DefaultLatency || m.Balance != BalanceSkill || m.AcceptsBackfill || *m.MatchFunction != want {
				t.Errorf("mode = %+v, match function %+v", m, *m.MatchFunction)
			}
		}},
		{name: "given values kept", in: ruleSet("", `,"skill_window":{"initial":10,"per_second":2,"max":50},"latency_budget_ms":{"initial":30,"max":30},`+
			`"balance":"none","backfill":true,"match_function":{"service":"mf","timeout":"500ms","on_failure":"wait","max_candidates":10}`),
			check: func(t *testing.T, s *Set) {
				m, _ := s.Mode("m")
				want := MatchFunction{Service: "mf", Timeout: Duration(500 * time.Millisecond), OnFailure: OnFailureWait, MaxCandidates: 10}
				if m.Skill != (Widening{10, 2, 50}) || m.LatencyMS != (Widening{30, 0, 30}) || m.Balance != BalanceNone || !m.AcceptsBackfill || *m.MatchFunction != want {
					t.Errorf("mode = %+v, match function %+v", m, *m.MatchFunction)
				}
			}},
		// A call that may hang past half a ticket's wait holds off the
		// fallback; a function shown fewer tickets than a match never
		// proposes one: each is taken within what the mode can use.
		{name: "a match function within its mode", in: `{"modes":[` +
			`{"name":"long","teams":2,"team_size":5,"max_wait":"1h","match_function":{"service":"mf","timeout":"24h","max_candidates":1}},` +
			`{"name":"short","teams":2,"team_size":1,"max_wait":"4s","match_function":{"service":"mf","timeout":"1h"}}]}`,
			check: func(t *testing.T, s *Set) {
				long, _ := s.Mode("long")
				short, _ := s.Mode("short")
				if long.MatchFunction.Timeout != Duration(MaxFunctionTimeout) || long.MatchFunction.MaxCandidates != 10 {
					t.Errorf("long: %+v, want a 10s timeout and 10 candidates", *long.MatchFunction)
				}
				if short.MatchFunction.Timeout != Duration(2*time.Second) || short.MatchFunction.MaxCandidates != DefaultMaxCandidates {
					t.Errorf("short: %+v, want half its max wait", *short.MatchFunction)
				}
			}},
		{name: "start early kept", in: ruleSet("", `,"teams":8,"start_early":{"min_teams":4,"after":"10s"}`), check: func(t *testing.T, s *Set) {
			m, _ := s.Mode("m")
			if m.StartEarly == nil || *m.StartEarly != (StartEarly{MinTeams: 4, After: Duration(10 * time.Second)}) {
				t.Errorf("start_early = %+v", m.StartEarly)
			}
		}},
		{name: "start early at its bounds", in: ruleSet("", `,"teams":100,"start_early":{"min_teams":99,"after":"59.999s"}`)},
		{name: "modes in the file's order", in: `{"modes":[{"name":"b","teams":2,"team_size":1,"max_wait":"1m"},{"name":"a","teams":3,"team_size":2,"max_wait":"1m"}]}`,
			check: func(t *testing.T, s *Set) {
				if got := s.Modes(); !reflect.DeepEqual(got, []string{"b", "a"}) {
					t.Errorf("Modes() = %v", got)
				}
				if s.MaxTeamSize() != 2 {
					t.Errorf("MaxTeamSize() = %d, want 2", s.MaxTeamSize())
				}
				if m, ok := s.Mode("a"); !ok || m.Players() != 6 {
					t.Errorf("Mode(a) = %+v, %v", m, ok)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}
}

// TestParseRefuses has a case for every check Parse makes. Each names what
// the error must say: the mode, the rule and the attribute at fault.
func TestParseRefuses(t *testing.T) {
	t.Parallel()
	mode := func(extra string) string { return ruleSet(testAttrs, extra) }
	rule := func(r string) string { return mode(`,"rules":[` + r + `]`) }
	attr := func(a string) string { return ruleSet(a, "") }
	tests := []struct {
		name string
		in   string
		want []string // each must be in the error
	}{
		{"not JSON", `modes`, []string{"not a JSON object"}},
		{"trailing data", mode("") + `{}`, []string{"data after the JSON object"}},
		{"unknown top-level field", `{"description":"x","modes":[{"name":"m","teams":2,"team_size":1,"max_wait":"1m"}]}`, []string{"description: unknown field"}},
		{"unknown mode field", mode(`,"maxwait":"1m"`), []string{"maxwait: unknown field"}},
		{"unknown rule field", rule(`{"kind":"equal","attribute":"build","dropafter":"1s"}`), []string{"dropafter: unknown field"}},
		{"unknown attribute field", attr(`"a":{"kind":"tag","optional":true}`), []string{"optional: unknown field"}},
		{"wrong JSON type", mode(`,"teams":"2"`), []string{"modes.teams"}},
		{"bad duration names its field", mode(`,"max_wait":"5x"`), []string{"max_wait", `"5x"`}},
		{"duration as a number names its field", mode(`,"max_wait":300`), []string{"max_wait"}},
		{"no modes", `{"modes":[]}`, []string{"modes: none"}},
		{"modes left out", `{}`, []string{"modes: none"}},
		{"mode twice", `{"modes":[{"name":"m","teams":2,"team_size":1,"max_wait":"1m"},{"name":"m","teams":2,"team_size":2,"max_wait":"1m"}]}`,
			[]string{`mode "m" appears twice`}},
		{"bad mode name", mode(`,"name":"m.1"`), []string{`mode "m.1": name:`}},
		{"empty mode name", mode(`,"name":""`), []string{`mode "": name: empty`}},
		{"one team", mode(`,"teams":1`), []string{`mode "m": 1 teams of 1 is not a match`}},
		{"team of none", mode(`,"team_size":0`), []string{`mode "m": 2 teams of 0`}},
		{"too many players", mode(`,"teams":11,"team_size":10`), []string{`mode "m": 11 teams of 10`}},
		{"teams x team_size overflows", mode(`,"teams":4611686018427387904,"team_size":4`), []string{`mode "m": 4611686018427387904 teams of 4`}},
		{"max_wait left out", `{"modes":[{"name":"m","teams":2,"team_size":1}]}`, []string{`mode "m": max_wait 0s`}},
		{"max_wait zero", mode(`,"max_wait":"0s"`), []string{`mode "m": max_wait 0s`}},
		{"max_wait negative", mode(`,"max_wait":"-1m"`), []string{`mode "m": max_wait -1m0s`}},
		{"max_wait above the ticket max age", mode(`,"max_wait":"61m"`), []string{`mode "m": max_wait 1h1m0s`}},
		{"skill window initial above max", mode(`,"skill_window":{"initial":50,"per_second":1,"max":10}`), []string{`mode "m": skill_window`}},
		{"skill window negative initial", mode(`,"skill_window":{"initial":-1,"max":10}`), []string{`mode "m": skill_window`}},
		{"latency budget negative per second", mode(`,"latency_budget_ms":{"initial":10,"per_second":-1,"max":100}`), []string{`mode "m": latency_budget_ms`}},
		{"bad balance", mode(`,"balance":"fair"`), []string{`mode "m": balance "fair"`}},
		{"17 rules", rule(strings.Repeat(`{"kind":"equal","attribute":"build"},`, maxRules) + `{"kind":"equal","attribute":"build"}`),
			[]string{`mode "m": rules: 17, at most 16`}},
		{"undeclared attribute", rule(`{"kind":"equal","attribute":"color"}`), []string{`mode "m": rules[0]: attribute "color" is not declared`}},
		{"attribute left out", rule(`{"kind":"equal"}`), []string{`rules[0]: attribute "" is not declared`}},
		{"unknown rule kind", rule(`{"kind":"like","attribute":"build"}`), []string{`mode "m": rules[0]: kind "like"`}},
		{"equal on a set", rule(`{"kind":"equal","attribute":"maps"}`), []string{`rules[0]: equal compares a string or tag, and "maps" is a set`}},
		{"equal on a number", rule(`{"kind":"equal","attribute":"level"}`), []string{`rules[0]: equal compares a string or tag, and "level" is a number`}},
		{"overlap on a string", rule(`{"kind":"overlap","attribute":"platform"}`), []string{`rules[0]: overlap compares a set, and "platform" is a string`}},
		{"overlap on a tag", rule(`{"kind":"overlap","attribute":"newbie"}`), []string{`rules[0]: overlap compares a set, and "newbie" is a tag`}},
		{"distance on a string", rule(`{"kind":"distance","attribute":"build","limit":{"max":1}}`), []string{`rules[0]: distance compares a number, and "build" is a string`}},
		{"distance on a set", rule(`{"kind":"distance","attribute":"maps","limit":{"max":1}}`), []string{`rules[0]: distance compares a number, and "maps" is a set`}},
		{"distance without a limit", rule(`{"kind":"distance","attribute":"level"}`), []string{`mode "m": rules[0]: a distance rule, and only one, has a limit`}},
		{"distance with a null limit", rule(`{"kind":"distance","attribute":"level","limit":null}`), []string{`rules[0]: a distance rule, and only one, has a limit`}},
		{"a limit on equal", rule(`{"kind":"equal","attribute":"build","limit":{"max":1}}`), []string{`rules[0]: a distance rule, and only one, has a limit`}},
		{"a limit on overlap", rule(`{"kind":"overlap","attribute":"maps","limit":{"max":1}}`), []string{`rules[0]: a distance rule, and only one, has a limit`}},
		{"limit initial above max", rule(`{"kind":"distance","attribute":"level","limit":{"initial":5,"max":1}}`), []string{`mode "m": rules[0].limit`}},
		{"negative drop_after", rule(`{"kind":"equal","attribute":"build","drop_after":"-1s"}`), []string{`mode "m": rules[0]: drop_after is negative`}},
		{"the second rule named", rule(`{"kind":"equal","attribute":"build"},{"kind":"overlap","attribute":"level"}`), []string{`rules[1]: overlap compares a set, and "level" is a number`}},
		{"bad attribute name", attr(`"a.b":{"kind":"tag"}`), []string{`attribute "a.b": name:`}},
		{"unknown attribute kind", attr(`"a":{"kind":"bool"}`), []string{`attribute "a": kind "bool"`}},
		{"attribute kind left out", attr(`"a":{}`), []string{`attribute "a": kind ""`}},
		{"set without values", attr(`"s":{"kind":"set"}`), []string{`attribute "s": a set declares its values, 1 to 64, not 0`}},
		{"set of 65 values", attr(`"s":{"kind":"set","values":[` + quoted(MaxSetValues+1) + `]}`), []string{`attribute "s": a set declares its values, 1 to 64, not 65`}},
		{"values on a number", attr(`"n":{"kind":"number","values":["1"]}`), []string{`attribute "n": values: only for a string or a set`}},
		{"values on a tag", attr(`"t":{"kind":"tag","values":["x"]}`), []string{`attribute "t": values: only for a string or a set`}},
		{"min on a string", attr(`"s":{"kind":"string","min":1}`), []string{`attribute "s": min and max: only for a number`}},
		{"max on a tag", attr(`"t":{"kind":"tag","max":1}`), []string{`attribute "t": min and max: only for a number`}},
		{"min above max", attr(`"n":{"kind":"number","min":10,"max":1}`), []string{`attribute "n": min 10 is above max 1`}},
		{"required tag", attr(`"t":{"kind":"tag","required":true}`), []string{`attribute "t": a tag cannot be required`}},
		{"empty value", attr(`"s":{"kind":"string","values":["pc",""]}`), []string{`attribute "s": values[1]: 1 to 64 bytes`}},
		{"65-byte value", attr(`"s":{"kind":"set","values":["` + strings.Repeat("x", 65) + `"]}`), []string{`attribute "s": values[0]: 1 to 64 bytes`}},
		{"value twice", attr(`"s":{"kind":"string","values":["pc","xbox","pc"]}`), []string{`attribute "s": values[2]: "pc" appears twice`}},
		{"bad match function service", mode(`,"match_function":{"service":"mf.v1"}`), []string{`mode "m": match_function.service:`}},
		{"match function without service", mode(`,"match_function":{}`), []string{`mode "m": match_function.service: empty`}},
		{"negative match function timeout", mode(`,"match_function":{"service":"mf","timeout":"-1s"}`), []string{`mode "m": match_function: want a positive timeout`}},
		{"too many candidates", mode(`,"match_function":{"service":"mf","max_candidates":10001}`), []string{`mode "m": match_function: want a positive timeout and 1 to 10000 max_candidates`}},
		{"negative candidates", mode(`,"match_function":{"service":"mf","max_candidates":-1}`), []string{`mode "m": match_function: want a positive timeout and 1 to 10000 max_candidates`}},
		{"bad on_failure", mode(`,"match_function":{"service":"mf","on_failure":"retry"}`), []string{`mode "m": match_function.on_failure "retry"`}},
		{"start_early min_teams 1", mode(`,"teams":8,"start_early":{"min_teams":1,"after":"10s"}`), []string{`mode "m": start_early.min_teams 1: want 2 or more and fewer than the mode's 8 teams`}},
		{"start_early min_teams left out", mode(`,"teams":8,"start_early":{"after":"10s"}`), []string{`mode "m": start_early.min_teams 0`}},
		{"start_early min_teams of every team", mode(`,"teams":8,"start_early":{"min_teams":8,"after":"10s"}`), []string{`mode "m": start_early.min_teams 8`}},
		{"start_early in a mode of two teams", mode(`,"start_early":{"min_teams":2,"after":"10s"}`), []string{`mode "m": start_early.min_teams 2: want 2 or more and fewer than the mode's 2 teams`}},
		{"start_early after zero", mode(`,"teams":8,"start_early":{"min_teams":4,"after":"0s"}`), []string{`mode "m": start_early.after 0s: want above 0 and below max_wait 1m0s`}},
		{"start_early after left out", mode(`,"teams":8,"start_early":{"min_teams":4}`), []string{`mode "m": start_early.after 0s`}},
		{"start_early after negative", mode(`,"teams":8,"start_early":{"min_teams":4,"after":"-5s"}`), []string{`mode "m": start_early.after -5s`}},
		{"start_early after max_wait", mode(`,"teams":8,"start_early":{"min_teams":4,"after":"1m"}`), []string{`mode "m": start_early.after 1m0s: want above 0 and below max_wait 1m0s`}},
		{"start_early unknown field", mode(`,"teams":8,"start_early":{"min_teams":4,"after":"10s","max_teams":6}`), []string{"max_teams: unknown field"}},
		{"start_early bad after", mode(`,"teams":8,"start_early":{"min_teams":4,"after":"soon"}`), []string{"start_early.after"}},
		{"every problem of one attribute named", attr(`"s":{"kind":"set","min":1}`),
			[]string{`attribute "s": a set declares its values`, `attribute "s": min and max: only for a number`}},
		{"every problem at once",
			`{"attributes":{"s":{"kind":"set"},"t":{"kind":"tag","required":true}},"modes":[` +
				`{"name":"a","teams":1,"team_size":1,"max_wait":"1m","balance":"fair"},{"name":"b","teams":2,"team_size":1,"max_wait":"2h"}]}`,
			[]string{`attribute "s": a set declares`, `attribute "t": a tag cannot be required`, `mode "a": 1 teams of 1`, `mode "a": balance "fair"`, `mode "b": max_wait 2h0m0s`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse accepted it: modes %v", s.Modes())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	s := Default()
	if got, want := s.Modes(), []string{"1v1", "2v2", "5v5", "ffa"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Modes() = %v, want %v", got, want)
	}
	for _, w := range []struct {
		name        string
		teams, size int
		wait        time.Duration
	}{{"1v1", 2, 1, 5 * time.Minute}, {"2v2", 2, 2, 5 * time.Minute}, {"5v5", 2, 5, 10 * time.Minute}, {"ffa", 8, 1, 5 * time.Minute}} {
		m, ok := s.Mode(w.name)
		if !ok {
			t.Fatalf("no mode %s", w.name)
		}
		if m.Teams != w.teams || m.TeamSize != w.size || time.Duration(m.MaxWait) != w.wait || m.Skill != DefaultSkill ||
			m.LatencyMS != DefaultLatency || m.Balance != BalanceSkill || len(m.Rules) != 0 || m.MatchFunction != nil || m.AcceptsBackfill {
			t.Errorf("mode %s = %+v", w.name, m)
		}
	}
	if _, ok := s.Mode("3v3"); ok {
		t.Error("Mode(3v3) found")
	}
	if s.MaxTeamSize() != 5 {
		t.Errorf("MaxTeamSize() = %d, want 5", s.MaxTeamSize())
	}
	s.Modes()[0] = "changed"
	if s.Modes()[0] != "1v1" {
		t.Error("Modes() hands out the set's own slice")
	}
}

func TestWideningAt(t *testing.T) {
	t.Parallel()
	w := Widening{Initial: 100, PerSecond: 25, Max: 1000}
	for _, tt := range []struct {
		waited time.Duration
		want   int
	}{
		{0, 100}, {-time.Second, 100}, {time.Second, 125}, {1500 * time.Millisecond, 137},
		{36 * time.Second, 1000}, {time.Hour, 1000},
	} {
		if got := w.At(tt.waited); got != tt.want {
			t.Errorf("At(%v) = %d, want %d", tt.waited, got, tt.want)
		}
	}
	if got := (Widening{Initial: 7, Max: 7}).At(time.Hour); got != 7 {
		t.Errorf("a fixed limit At(1h) = %d, want 7", got)
	}
	// Parse accepts any size: initial plus the widening must not wrap
	// around to a negative sum, which At would read as the initial limit.
	huge := Widening{Initial: 1 << 62, PerSecond: 1 << 62, Max: math.MaxInt}
	if got := huge.At(time.Second); got != math.MaxInt {
		t.Errorf("%+v.At(1s) = %d, want the max %d", huge, got, math.MaxInt)
	}
}

func TestDurationJSON(t *testing.T) {
	t.Parallel()
	b, err := Duration(90 * time.Second).MarshalJSON()
	if err != nil || string(b) != `"1m30s"` {
		t.Fatalf("MarshalJSON = %s, %v", b, err)
	}
	var d Duration
	if err := d.UnmarshalJSON(b); err != nil || d != Duration(90*time.Second) {
		t.Fatalf("UnmarshalJSON(%s) = %v, %v", b, time.Duration(d), err)
	}
	for _, bad := range []string{`90`, `"90"`, `"soon"`, `null`} {
		if err := d.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("UnmarshalJSON(%s) accepted", bad)
		}
	}
}

// TestWideWindowsAreTakenAtTheRange: a skill window or latency budget past
// the range (99999 for "no limit") loads as it did and means the range:
// it already reaches every ticket. Refused, it stopped the services of a
// deployment whose rule set said so; kept as written, the matcher's
// search went bucket by bucket out to it.
func TestWideWindowsAreTakenAtTheRange(t *testing.T) {
	t.Parallel()
	s, err := Parse([]byte(`{"modes":[{"name":"m","teams":2,"team_size":1,"max_wait":"1m",
		"skill_window":{"initial":20000,"per_second":5,"max":9223372036854775807},
		"latency_budget_ms":{"initial":60,"max":99999}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := s.Mode("m")
	if want := (Widening{Initial: 10000, PerSecond: 5, Max: 10000}); m.Skill != want {
		t.Errorf("skill window %+v, want %+v", m.Skill, want)
	}
	if want := (Widening{Initial: 60, Max: 10000}); m.LatencyMS != want {
		t.Errorf("latency budget %+v, want %+v", m.LatencyMS, want)
	}
}
