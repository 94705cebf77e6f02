package pool

import (
	"reflect"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// SetMode gives the pool the mode of a reloaded rule set (the same name;
// the caller keeps pools by name). The waiting tickets are judged by m
// from now on. When m compiles attributes as the old mode did (the same
// rules over the same declarations: a reload that changed another mode,
// or only this mode's max wait, windows, limits, drop_after, teams or
// start_early) that is all. Otherwise every waiting ticket's Values are
// compiled again from its Attrs and the index is rebuilt for m's rules:
// O(waiting tickets) on the owner goroutine, about one decode per ticket
// with attributes of its own (tickets with common attributes share one
// compiled Values). BENCHMARKS.md measures it: about 0.25 s a million
// tickets with common attributes, 1.7 s with all different. A change of
// teams or team size applies to matches formed from now on; tickets whose
// party no longer fits a team wait and expire.
func (p *Pool) SetMode(m *rules.Mode) {
	old := p.mode
	p.mode = m
	if compilesAlike(old, m) {
		return
	}
	// Tickets with the same attributes share one compiled Values. The
	// memo is bounded: with attributes all different it would only grow.
	type compiled struct {
		v rules.Values
		b band
	}
	seen := make(map[string]compiled, recompileMemo)
	for e := p.arrival.head; e != nil; e = e.anext {
		c, ok := seen[e.Attrs]
		if !ok {
			a := p.attributes(e)
			c = compiled{m.Compile(a), bandOf(m, a)}
			if len(seen) == recompileMemo {
				clear(seen)
			}
			seen[e.Attrs] = c
		}
		e.Values, e.band, e.compiled = c.v, c.b, m
	}
	p.reindex()
}

// recompileMemo bounds the attributes SetMode remembers compiled.
const recompileMemo = 4096

// compile makes e.Values and band those of the pool's mode, unless
// SetAttributes compiled them for it: an entry made before a reload is
// compiled again.
func (p *Pool) compile(e *Entry) {
	if e.compiled == p.mode {
		return
	}
	if e.compiled == nil || !compilesAlike(e.compiled, p.mode) {
		a := p.attributes(e)
		e.Values, e.band = p.mode.Compile(a), bandOf(p.mode, a)
	}
	e.compiled = p.mode
}

// attributes decodes e's attributes. Attrs that do not decode were not
// written by SetAttributes; the ticket is then judged as carrying none
// (it fits only tickets without the attributes the rules ask for), which
// is all a pool can do with it.
func (p *Pool) attributes(e *Entry) *events.Attributes {
	a, err := e.Attributes()
	if err != nil {
		return nil
	}
	return a
}

// compilesAlike reports whether Values and bands compiled for a are those
// b would compile: the same rules, by kind and attribute (and the same
// widest limit for a distance rule), over the same
// declarations of those attributes (a set's bits follow its declared
// values, which the mode holds unexported). reflect.DeepEqual compares
// them too; everything else a mode says, the copy takes from b. A field
// added to rules.Mode later compares as well, so at worst a reload
// compiles again when it need not. (rules could say this itself:
// a Mode.CompilesLike would replace the reflection.)
func compilesAlike(a, b *rules.Mode) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil || len(a.Rules) != len(b.Rules) {
		return false
	}
	x := *a
	x.Name, x.Teams, x.TeamSize, x.MaxWait = b.Name, b.Teams, b.TeamSize, b.MaxWait
	x.Skill, x.LatencyMS, x.Balance, x.AcceptsBackfill, x.MatchFunction = b.Skill, b.LatencyMS, b.Balance, b.AcceptsBackfill, b.MatchFunction
	x.StartEarly = b.StartEarly
	// A rule's expansions change how Values are judged, not what they
	// are; but a distance limit's max is the width of the index's bands.
	x.Rules = make([]rules.Rule, len(a.Rules))
	for i, r := range a.Rules {
		if l := b.Rules[i].Limit; l != nil && r.Limit != nil {
			w := *l
			w.Max = r.Limit.Max
			r.Limit = &w
		} else {
			r.Limit = l
		}
		r.DropAfter = b.Rules[i].DropAfter
		x.Rules[i] = r
	}
	return reflect.DeepEqual(&x, b)
}
