package rules

import (
	"math"
	"slices"
	"time"
	"unique"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Values are a ticket's attributes as one mode's rules compare them: one
// word and one handle per rule, in the mode's rule order. A pool keeps
// them beside each waiting ticket (16 bytes a rule) instead of the
// attributes' maps, and compares them without hashing a string.
type Values []value

type value struct {
	// s is a string's interned value (equal); zero when absent.
	s unique.Handle[string]
	// n is a number (distance; NaN when absent), a tag (1 present, 0
	// absent) or the bits of a set's members among its declared values
	// (overlap; all ones when absent: no preference fits any).
	n float64
}

// Compile turns a ticket's attributes into the Values of m's rules. The
// ticket has passed Set.Check, so every value is declared.
func (m *Mode) Compile(a *events.Attributes) Values {
	if len(m.Rules) == 0 {
		return nil
	}
	if a == nil {
		a = &events.Attributes{}
	}
	vs := make(Values, len(m.Rules))
	for i, r := range m.Rules {
		d := m.attrs[i]
		switch d.Kind {
		case KindString:
			if v, ok := a.Strings[r.Attribute]; ok {
				vs[i].s = unique.Make(v)
			}
		case KindTag:
			if slices.Contains(a.Tags, r.Attribute) {
				vs[i].n = 1
			}
		case KindNumber:
			vs[i].n = math.NaN()
			if v, ok := a.Numbers[r.Attribute]; ok {
				vs[i].n = v
			}
		case KindSet:
			var bits uint64
			for _, v := range a.Sets[r.Attribute] {
				if j := slices.Index(d.Values, v); j >= 0 {
					bits |= 1 << j
				}
			}
			if bits == 0 {
				bits = math.MaxUint64
			}
			vs[i].n = math.Float64frombits(bits)
		}
	}
	return vs
}

// Fits reports whether two tickets may play in one match by m's attribute
// rules, after waiting waitedA and waitedB: a rule is judged at the longer
// of the two waits, so it relaxes (a distance widens, a rule drops) as soon
// as either ticket has waited long enough. Skill and latency are the
// pool's to judge. Values of another mode's rules never fit.
func (m *Mode) Fits(a, b Values, waitedA, waitedB time.Duration) bool {
	if len(a) != len(m.Rules) || len(b) != len(m.Rules) {
		return len(m.Rules) == 0
	}
	waited := max(waitedA, waitedB)
	for i := range m.Rules {
		r := &m.Rules[i]
		if r.DropAfter > 0 && waited >= time.Duration(r.DropAfter) {
			continue
		}
		x, y := a[i], b[i]
		switch r.Kind {
		case RuleEqual:
			if x.s != y.s || x.n != y.n {
				return false
			}
		case RuleOverlap:
			if math.Float64bits(x.n)&math.Float64bits(y.n) == 0 {
				return false
			}
		case RuleDistance:
			if !math.IsNaN(x.n) && !math.IsNaN(y.n) && math.Abs(x.n-y.n) > float64(r.Limit.At(waited)) {
				return false
			}
		}
	}
	return true
}
