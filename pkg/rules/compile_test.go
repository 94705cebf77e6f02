package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// oneMode is mode "m" of a rule set declaring testAttrs, with rules (a
// JSON list).
func oneMode(t *testing.T, rules string) *Mode {
	t.Helper()
	s, err := Parse([]byte(ruleSet(testAttrs, `,"rules":`+rules)))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	m, _ := s.Mode("m")
	return m
}

// Attributes of one kind each, for the tests' tickets.
func str(name, v string) *events.Attributes {
	return &events.Attributes{Strings: map[string]string{name: v}}
}
func set(name string, vs ...string) *events.Attributes {
	return &events.Attributes{Sets: map[string][]string{name: vs}}
}
func num(name string, v float64) *events.Attributes {
	return &events.Attributes{Numbers: map[string]float64{name: v}}
}
func tags(ts ...string) *events.Attributes { return &events.Attributes{Tags: ts} }

// none is a ticket without attributes.
var none *events.Attributes

func TestFits(t *testing.T) {
	t.Parallel()
	const (
		platform = `[{"kind":"equal","attribute":"platform"}]`
		newbie   = `[{"kind":"equal","attribute":"newbie"}]`
		maps     = `[{"kind":"overlap","attribute":"maps"}]`
		level    = `[{"kind":"distance","attribute":"level","limit":{"initial":5,"per_second":1,"max":20}}]`
		both     = `[{"kind":"equal","attribute":"platform"},{"kind":"distance","attribute":"level","limit":{"initial":5,"max":5}}]`
	)
	s := time.Second
	tests := []struct {
		name         string
		rules        string
		a, b         *events.Attributes
		waitA, waitB time.Duration
		want         bool
	}{
		{"no rules fit anything", `[]`, str("platform", "pc"), str("platform", "xbox"), 0, 0, true},

		{"equal strings", platform, str("platform", "pc"), str("platform", "pc"), 0, 0, true},
		{"different strings", platform, str("platform", "pc"), str("platform", "xbox"), 0, 0, false},
		{"different strings after an hour", platform, str("platform", "pc"), str("platform", "xbox"), time.Hour, time.Hour, false},
		{"absent string equals absent", platform, none, &events.Attributes{}, 0, 0, true},
		{"absent string is not a value", platform, none, str("platform", "pc"), 0, 0, false},
		{"another string attribute is not this one", platform, str("build", "pc"), str("platform", "pc"), 0, 0, false},

		{"both tagged", newbie, tags("newbie"), tags("newbie"), 0, 0, true},
		{"neither tagged", newbie, tags(), none, 0, 0, true},
		{"tagged and not", newbie, tags("newbie"), none, 0, 0, false},
		{"tagged and another tag", newbie, tags("newbie"), tags("veteran"), 0, 0, false},

		{"sets share a member", maps, set("maps", "dust", "nuke"), set("maps", "nuke", "inferno"), 0, 0, true},
		{"disjoint sets", maps, set("maps", "dust"), set("maps", "nuke", "inferno"), 0, 0, false},
		{"disjoint sets after an hour", maps, set("maps", "dust"), set("maps", "nuke"), time.Hour, time.Hour, false},
		{"absent set fits any", maps, none, set("maps", "inferno"), 0, 0, true},
		{"empty set fits any", maps, set("maps"), set("maps", "dust"), 0, 0, true},
		{"both sets absent", maps, none, none, 0, 0, true},

		{"numbers at the limit", level, num("level", 30), num("level", 35), 0, 0, true},
		{"numbers past the limit", level, num("level", 30), num("level", 36), 0, 0, false},
		{"numbers below zero", level, num("level", -3), num("level", 3), 0, 0, false},
		{"limit widened by the first wait", level, num("level", 30), num("level", 36), s, 0, true},
		{"limit widened by the second wait", level, num("level", 30), num("level", 36), 0, s, true},
		{"limit widened by the longer wait", level, num("level", 30), num("level", 45), 10 * s, 3 * s, true},
		{"limit not widened by the sum", level, num("level", 30), num("level", 45), 5 * s, 5 * s, false},
		{"limit at its max", level, num("level", 30), num("level", 50), time.Hour, 0, true},
		{"limit stops at its max", level, num("level", 30), num("level", 51), time.Hour, time.Hour, false},
		{"fractional numbers", level, num("level", 30), num("level", 35.5), 0, 0, false},
		{"absent number fits any", level, none, num("level", 99), 0, 0, true},
		{"both numbers absent", level, none, none, 0, 0, true},

		{"every rule must hold", both, &events.Attributes{Strings: map[string]string{"platform": "pc"}, Numbers: map[string]float64{"level": 1}},
			&events.Attributes{Strings: map[string]string{"platform": "pc"}, Numbers: map[string]float64{"level": 9}}, 0, 0, false},
		{"every rule holds", both, &events.Attributes{Strings: map[string]string{"platform": "pc"}, Numbers: map[string]float64{"level": 1}},
			&events.Attributes{Strings: map[string]string{"platform": "pc"}, Numbers: map[string]float64{"level": 6}}, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := oneMode(t, tt.rules)
			a, b := m.Compile(tt.a), m.Compile(tt.b)
			if got := m.Fits(a, b, tt.waitA, tt.waitB); got != tt.want {
				t.Errorf("Fits(a, b, %v, %v) = %v, want %v", tt.waitA, tt.waitB, got, tt.want)
			}
			// Every rule is symmetric: the anchor may be either ticket.
			if got := m.Fits(b, a, tt.waitB, tt.waitA); got != tt.want {
				t.Errorf("Fits(b, a, %v, %v) = %v, want %v", tt.waitB, tt.waitA, got, tt.want)
			}
		})
	}
}

// TestFitsDropAfter: a rule is dropped once either ticket has waited
// drop_after, and kept a moment before.
func TestFitsDropAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rule string
		a, b *events.Attributes
	}{
		{"equal string", `{"kind":"equal","attribute":"platform","drop_after":"60s"}`, str("platform", "pc"), str("platform", "xbox")},
		{"equal absent string", `{"kind":"equal","attribute":"platform","drop_after":"60s"}`, none, str("platform", "xbox")},
		{"equal tag", `{"kind":"equal","attribute":"newbie","drop_after":"60s"}`, tags("newbie"), none},
		{"overlap", `{"kind":"overlap","attribute":"maps","drop_after":"60s"}`, set("maps", "dust"), set("maps", "nuke")},
		{"distance", `{"kind":"distance","attribute":"level","limit":{"initial":1,"per_second":1,"max":2},"drop_after":"60s"}`, num("level", 1), num("level", 100)},
	}
	const drop = 60 * time.Second
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := oneMode(t, "["+tt.rule+"]")
			a, b := m.Compile(tt.a), m.Compile(tt.b)
			for _, w := range []struct {
				waitA, waitB time.Duration
				want         bool
			}{
				{0, 0, false}, {drop - time.Millisecond, drop - time.Millisecond, false},
				{drop, 0, true}, {0, drop, true}, {time.Hour, time.Second, true},
			} {
				if got := m.Fits(a, b, w.waitA, w.waitB); got != w.want {
					t.Errorf("Fits after %v and %v = %v, want %v", w.waitA, w.waitB, got, w.want)
				}
			}
		})
	}
}

// TestFitsEverySetMember: a set's members are bits of one word, the 64th
// as well as the first.
func TestFitsEverySetMember(t *testing.T) {
	t.Parallel()
	s, err := Parse([]byte(ruleSet(`"s":{"kind":"set","values":[`+quoted(MaxSetValues)+`]}`, `,"rules":[{"kind":"overlap","attribute":"s"}]`)))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := s.Mode("m")
	for i := range MaxSetValues {
		v := fmt.Sprintf("v%d", i)
		other := fmt.Sprintf("v%d", (i+1)%MaxSetValues)
		a := m.Compile(set("s", v))
		if !m.Fits(a, m.Compile(set("s", other, v)), 0, 0) {
			t.Errorf("%s does not fit {%s, %s}", v, other, v)
		}
		if m.Fits(a, m.Compile(set("s", other)), 0, 0) {
			t.Errorf("%s fits %s", v, other)
		}
	}
	// Members 52 to 62 fill a float64's exponent: with member 0 and
	// without 51 the word is a signalling NaN, which must keep its bits.
	var nan []string
	for i := 52; i <= 62; i++ {
		nan = append(nan, fmt.Sprintf("v%d", i))
	}
	a := m.Compile(set("s", append(nan, "v0")...))
	if !m.Fits(a, m.Compile(set("s", "v0")), 0, 0) || !m.Fits(a, m.Compile(set("s", "v62")), 0, 0) || m.Fits(a, m.Compile(set("s", "v51")), 0, 0) {
		t.Error("a set whose word is a NaN lost members")
	}
}

// TestFitsOtherModesValues: Values are compiled for one mode's rules;
// another mode's, or none, never fit one with rules.
func TestFitsOtherModesValues(t *testing.T) {
	t.Parallel()
	one := oneMode(t, `[{"kind":"equal","attribute":"platform"}]`)
	two := oneMode(t, `[{"kind":"equal","attribute":"platform"},{"kind":"equal","attribute":"newbie"}]`)
	bare := oneMode(t, `[]`)
	pc := str("platform", "pc")
	if bare.Compile(pc) != nil {
		t.Errorf("a mode without rules compiled %v", bare.Compile(pc))
	}
	for _, tt := range []struct {
		name string
		m    *Mode
		a, b Values
	}{
		{"two rules' values in a mode of one", one, two.Compile(pc), two.Compile(pc)},
		{"one of each", one, one.Compile(pc), two.Compile(pc)},
		{"one rule's values in a mode of two", two, one.Compile(pc), one.Compile(pc)},
		{"values of a mode without rules", one, bare.Compile(pc), bare.Compile(pc)},
	} {
		if tt.m.Fits(tt.a, tt.b, time.Hour, time.Hour) {
			t.Errorf("%s: fit", tt.name)
		}
	}
	if !one.Fits(one.Compile(pc), one.Compile(pc), 0, 0) {
		t.Error("the mode's own values do not fit")
	}
}
