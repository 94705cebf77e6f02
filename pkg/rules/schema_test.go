package rules

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// examplesDir holds the example rule sets the README shows.
const examplesDir = "../../examples/rules"

// compileSchema compiles Schema, or the part of it at fragment
// ("#/$defs/duration"; "" for the whole).
func compileSchema(t *testing.T, fragment string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema))
	if err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	id, _ := doc.(map[string]any)["$id"].(string)
	if id == "" {
		t.Fatal("the schema has no $id")
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(id + fragment)
	if err != nil {
		t.Fatalf("compile the schema%s: %v", fragment, err)
	}
	return sch
}

// validate reports whether data is a rule set by the schema.
func validate(t *testing.T, sch *jsonschema.Schema, data []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// TestSchemaExamples: every example rule set passes the schema and Parse.
func TestSchemaExamples(t *testing.T) {
	t.Parallel()
	sch := compileSchema(t, "")
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for _, want := range []string{"crossplay.json", "default.json", "free-for-all.json", "maps.json", "ranked-casual.json"} {
		if !slices.Contains(names, want) {
			t.Errorf("no example %s in %v", want, names)
		}
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(t, sch, data); err != nil {
				t.Errorf("schema: %v", err)
			}
			if _, err := Parse(data); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

// TestSchemaDefault: the rule set without a file, written as a file,
// passes the schema, and examples/rules/default.json is that rule set.
func TestSchemaDefault(t *testing.T) {
	t.Parallel()
	def := Default()
	f := file{Attributes: def.attributes}
	for _, name := range def.Modes() {
		f.Modes = append(f.Modes, *def.modes[name])
	}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(t, compileSchema(t, ""), data); err != nil {
		t.Errorf("Default() as a file: schema: %v\n%s", err, data)
	}
	again, err := Parse(data)
	if err != nil {
		t.Fatalf("Default() as a file: Parse: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(again, def) {
		t.Errorf("Default() written and read again differs:\n%s", data)
	}
	fromFile, err := Load(filepath.Join(examplesDir, "default.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromFile, def) {
		t.Errorf("default.json is not Default(): %v", fromFile.Modes())
	}
}

// TestSchemaAndParseAgree: rule sets the schema can judge alone are
// accepted by both or refused by both.
func TestSchemaAndParseAgree(t *testing.T) {
	t.Parallel()
	sch := compileSchema(t, "")
	mode := func(extra string) string { return ruleSet(testAttrs, extra) }
	rule := func(r string) string { return mode(`,"rules":[` + r + `]`) }
	attr := func(a string) string { return ruleSet(a, "") }
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"every field", ruleSet(testAttrs+`,"t":{"kind":"tag","required":false},"s":{"kind":"string","values":[],"required":true}`,
			`,"skill_window":{"initial":10,"per_second":2,"max":50},"latency_budget_ms":{"initial":30,"max":30},"balance":"none","backfill":true,`+
				`"match_function":{"service":"mf","timeout":"1.5s","on_failure":"wait","max_candidates":10000},"rules":[`+
				`{"kind":"equal","attribute":"platform","drop_after":"1m30s"},{"kind":"equal","attribute":"t"},{"kind":"overlap","attribute":"maps","drop_after":"0"},`+
				`{"kind":"distance","attribute":"level","limit":{}}],"teams":3,"start_early":{"min_teams":2,"after":"30s"}`), true},
		{"start early", mode(`,"teams":8,"start_early":{"min_teams":4,"after":"10s"}`), true},
		{"start early at its bounds", mode(`,"teams":100,"start_early":{"min_teams":99,"after":"1ms"}`), true},
		{"attributes left out", `{"modes":[{"name":"m","teams":2,"team_size":1,"max_wait":"90s"}]}`, true},
		{"a set of 64", attr(`"s":{"kind":"set","values":[` + quoted(MaxSetValues) + `]}`), true},
		{"16 rules", rule(strings.Repeat(`{"kind":"equal","attribute":"build"},`, maxRules-1) + `{"kind":"equal","attribute":"build"}`), true},
		{"a 64-byte value", attr(`"s":{"kind":"string","values":["` + strings.Repeat("x", 64) + `"]}`), true},

		{"not an object", `[]`, false},
		{"no modes", `{"modes":[]}`, false},
		{"modes left out", `{}`, false},
		{"unknown top-level field", `{"description":"x","modes":[{"name":"m","teams":2,"team_size":1,"max_wait":"1m"}]}`, false},
		{"unknown mode field", mode(`,"maxwait":"1m"`), false},
		{"unknown rule field", rule(`{"kind":"equal","attribute":"build","dropafter":"1s"}`), false},
		{"unknown attribute field", attr(`"a":{"kind":"tag","optional":true}`), false},
		{"unknown widening field", mode(`,"skill_window":{"start":1}`), false},
		{"unknown match function field", mode(`,"match_function":{"service":"mf","retries":3}`), false},
		{"mode name left out", `{"modes":[{"teams":2,"team_size":1,"max_wait":"1m"}]}`, false},
		{"bad mode name", mode(`,"name":"m.1"`), false},
		{"teams left out", `{"modes":[{"name":"m","team_size":1,"max_wait":"1m"}]}`, false},
		{"one team", mode(`,"teams":1`), false},
		{"team of none", mode(`,"team_size":0`), false},
		{"101 teams", mode(`,"teams":101`), false},
		{"fractional team size", mode(`,"team_size":1.5`), false},
		{"max_wait left out", `{"modes":[{"name":"m","teams":2,"team_size":1}]}`, false},
		{"max_wait zero", mode(`,"max_wait":"0s"`), false},
		{"max_wait negative", mode(`,"max_wait":"-1m"`), false},
		{"max_wait without unit", mode(`,"max_wait":"60"`), false},
		{"max_wait a number", mode(`,"max_wait":60`), false},
		{"negative skill window", mode(`,"skill_window":{"initial":-1,"max":10}`), false},
		{"skill window past every skill", mode(`,"skill_window":{"initial":100,"max":99999}`), true},
		{"latency budget past every latency", mode(`,"latency_budget_ms":{"initial":60,"max":99999}`), true},
		{"bad balance", mode(`,"balance":"fair"`), false},
		{"17 rules", rule(strings.Repeat(`{"kind":"equal","attribute":"build"},`, maxRules) + `{"kind":"equal","attribute":"build"}`), false},
		{"unknown rule kind", rule(`{"kind":"like","attribute":"build"}`), false},
		{"rule attribute left out", rule(`{"kind":"equal"}`), false},
		{"distance without a limit", rule(`{"kind":"distance","attribute":"level"}`), false},
		{"a limit on equal", rule(`{"kind":"equal","attribute":"build","limit":{"max":1}}`), false},
		{"negative drop_after", rule(`{"kind":"equal","attribute":"build","drop_after":"-1s"}`), false},
		{"bad drop_after", rule(`{"kind":"equal","attribute":"build","drop_after":"soon"}`), false},
		{"bad attribute name", attr(`"a.b":{"kind":"tag"}`), false},
		{"unknown attribute kind", attr(`"a":{"kind":"bool"}`), false},
		{"attribute kind left out", attr(`"a":{}`), false},
		{"set without values", attr(`"s":{"kind":"set"}`), false},
		{"set with no values", attr(`"s":{"kind":"set","values":[]}`), false},
		{"set of 65", attr(`"s":{"kind":"set","values":[` + quoted(MaxSetValues+1) + `]}`), false},
		{"values on a number", attr(`"n":{"kind":"number","values":["1"]}`), false},
		{"values on a tag", attr(`"t":{"kind":"tag","values":["x"]}`), false},
		{"min on a string", attr(`"s":{"kind":"string","min":1}`), false},
		{"max on a set", attr(`"s":{"kind":"set","values":["a"],"max":1}`), false},
		{"required tag", attr(`"t":{"kind":"tag","required":true}`), false},
		{"empty value", attr(`"s":{"kind":"string","values":[""]}`), false},
		{"65-byte value", attr(`"s":{"kind":"string","values":["` + strings.Repeat("x", 65) + `"]}`), false},
		{"value twice", attr(`"s":{"kind":"string","values":["a","a"]}`), false},
		{"match function without service", mode(`,"match_function":{"timeout":"1s"}`), false},
		{"bad match function service", mode(`,"match_function":{"service":"mf.v1"}`), false},
		{"bad on_failure", mode(`,"match_function":{"service":"mf","on_failure":"retry"}`), false},
		{"10001 candidates", mode(`,"match_function":{"service":"mf","max_candidates":10001}`), false},
		{"negative timeout", mode(`,"match_function":{"service":"mf","timeout":"-1s"}`), false},
		{"start_early min_teams 1", mode(`,"teams":8,"start_early":{"min_teams":1,"after":"10s"}`), false},
		{"start_early min_teams 100", mode(`,"teams":100,"start_early":{"min_teams":100,"after":"10s"}`), false},
		{"start_early fractional min_teams", mode(`,"teams":8,"start_early":{"min_teams":2.5,"after":"10s"}`), false},
		{"start_early min_teams left out", mode(`,"teams":8,"start_early":{"after":"10s"}`), false},
		{"start_early after left out", mode(`,"teams":8,"start_early":{"min_teams":4}`), false},
		{"start_early after zero", mode(`,"teams":8,"start_early":{"min_teams":4,"after":"0"}`), false},
		{"start_early after negative", mode(`,"teams":8,"start_early":{"min_teams":4,"after":"-1s"}`), false},
		{"start_early unknown field", mode(`,"teams":8,"start_early":{"min_teams":4,"after":"10s","max_teams":6}`), false},
		{"start_early not an object", mode(`,"teams":8,"start_early":4`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			schemaErr := validate(t, sch, []byte(tt.in))
			_, parseErr := Parse([]byte(tt.in))
			if (schemaErr == nil) != tt.ok {
				t.Errorf("schema: %v, want ok %v", schemaErr, tt.ok)
			}
			if (parseErr == nil) != tt.ok {
				t.Errorf("Parse: %v, want ok %v", parseErr, tt.ok)
			}
		})
	}
}

// TestSchemaDuration: the schema's durations are those time.ParseDuration
// reads (non-negative; above zero for max_wait), but for the few noted.
func TestSchemaDuration(t *testing.T) {
	t.Parallel()
	nonNegative, positive := compileSchema(t, "#/$defs/duration"), compileSchema(t, "#/$defs/positive_duration")
	for _, tt := range []struct {
		s string
		// differs, differsPositive: the schema is stricter (a signed
		// zero) or looser (a duration too long for an int64 of
		// nanoseconds) than Parse.
		differs, differsPositive bool
	}{
		{s: "0"}, {s: "0s"}, {s: "00s"}, {s: "0.0s"}, {s: "0h0m"}, {s: "1s"}, {s: "1.5s"}, {s: ".5s"}, {s: "1.s"},
		{s: "90s"}, {s: "1h30m"}, {s: "1m30s"}, {s: "100ms"}, {s: "10us"}, {s: "10µs"}, {s: "10μs"}, {s: "5ns"}, {s: "+5s"},
		{s: "-5s"}, {s: "5"}, {s: "5x"}, {s: "5S"}, {s: "s"}, {s: ""}, {s: " 5s"}, {s: "5 s"}, {s: "1h-1m"}, {s: "1e3s"}, {s: "."}, {s: ".s"},
		{s: "-0", differs: true}, {s: "-0s", differs: true}, {s: "9999999999h", differs: true, differsPositive: true},
	} {
		d, err := time.ParseDuration(tt.s)
		data, _ := json.Marshal(tt.s)
		gotAny, gotPositive := validate(t, nonNegative, data) == nil, validate(t, positive, data) == nil
		wantAny, wantPositive := err == nil && d >= 0, err == nil && d > 0
		if (gotAny == wantAny) == tt.differs {
			t.Errorf("duration %q: schema ok %v, ParseDuration %v, %v", tt.s, gotAny, d, err)
		}
		if (gotPositive == wantPositive) == tt.differsPositive {
			t.Errorf("positive duration %q: schema ok %v, ParseDuration %v, %v", tt.s, gotPositive, d, err)
		}
	}
}

// schemaAt is the schema's JSON value at path.
func schemaAt(t *testing.T, path ...string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(Schema, &v); err != nil {
		t.Fatal(err)
	}
	for i, p := range path {
		switch d := v.(type) {
		case map[string]any:
			v = d[p]
		case []any:
			n, err := strconv.Atoi(p)
			if err != nil || n >= len(d) {
				t.Fatalf("schema %v: no %s", path[:i], p)
			}
			v = d[n]
		}
		if v == nil {
			t.Fatalf("schema: nothing at %v", path[:i+1])
		}
	}
	return v
}

// TestSchemaFields: the schema has every field of the Go types Parse reads,
// and no other.
func TestSchemaFields(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		typ  reflect.Type
		path []string
	}{
		{reflect.TypeFor[file](), []string{"properties"}},
		{reflect.TypeFor[Mode](), []string{"$defs", "mode", "properties"}},
		{reflect.TypeFor[Attribute](), []string{"$defs", "attribute", "properties"}},
		{reflect.TypeFor[Rule](), []string{"$defs", "rule", "properties"}},
		{reflect.TypeFor[Widening](), []string{"$defs", "widening", "properties"}},
		{reflect.TypeFor[MatchFunction](), []string{"$defs", "match_function", "properties"}},
		{reflect.TypeFor[StartEarly](), []string{"$defs", "start_early", "properties"}},
	} {
		var want []string
		for f := range tt.typ.Fields() {
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); f.IsExported() && name != "-" {
				want = append(want, name)
			}
		}
		var got []string
		for name := range schemaAt(t, tt.path...).(map[string]any) {
			got = append(got, name)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: schema fields %v, Go fields %v", tt.typ, got, want)
		}
	}
}

// TestSchemaEnums: the schema's enumerations and bounds are the package's.
func TestSchemaEnums(t *testing.T) {
	t.Parallel()
	strs := func(v any) []string {
		var out []string
		for _, s := range v.([]any) {
			out = append(out, s.(string))
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	var ruleKindNames []string
	for k := range ruleKinds {
		ruleKindNames = append(ruleKindNames, k)
	}
	for _, tt := range []struct {
		path []string
		want []string
	}{
		{[]string{"$defs", "attribute", "properties", "kind", "enum"}, sorted(KindString, KindSet, KindNumber, KindTag)},
		{[]string{"$defs", "rule", "properties", "kind", "enum"}, sorted(ruleKindNames...)},
		{[]string{"$defs", "mode", "properties", "balance", "enum"}, sorted(BalanceSkill, BalanceNone)},
		{[]string{"$defs", "match_function", "properties", "on_failure", "enum"}, sorted(OnFailureFallback, OnFailureWait)},
	} {
		if got := strs(schemaAt(t, tt.path...)); !slices.Equal(got, tt.want) {
			t.Errorf("%v = %v, want %v", tt.path, got, tt.want)
		}
	}
	for _, tt := range []struct {
		path []string
		want float64
	}{
		{[]string{"$defs", "attribute", "allOf", "0", "then", "properties", "values", "maxItems"}, MaxSetValues},
		{[]string{"$defs", "attribute", "properties", "values", "items", "maxLength"}, events.MaxAttributeValueLen},
		{[]string{"$defs", "mode", "properties", "rules", "maxItems"}, maxRules},
		{[]string{"$defs", "mode", "properties", "teams", "maximum"}, play.MaxPlayers},
		{[]string{"$defs", "mode", "properties", "team_size", "maximum"}, play.MaxPlayers},
		{[]string{"$defs", "start_early", "properties", "min_teams", "maximum"}, play.MaxPlayers - 1},
	} {
		if got := schemaAt(t, tt.path...); got != tt.want {
			t.Errorf("%v = %v, want %v", tt.path, got, tt.want)
		}
	}
}
