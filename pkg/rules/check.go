package rules

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Check reports every way a ticket breaks the rule set, each under the
// field it names: an unknown mode, a party larger than the mode's team,
// latencies for a region not served, an attribute not declared or of
// another kind, a value not allowed, a required attribute missing. Fields
// are spelled as events.DecodeTicket spells them (a tag and a set member
// by their index: "attributes.tags[2]"). The
// frontend calls it before it accepts a ticket and the matcher before it
// pools one, so both refuse the same tickets for the same reasons. It
// checks only what the rule set adds: the contract's own bounds are
// events.DecodeTicket's and Ticket.Validate's.
func (s *Set) Check(t *events.Ticket, regions events.Regions) error {
	fe := &events.FieldErrors{Kind: "ticket"}
	if m, ok := s.modes[t.Mode]; !ok {
		fe.Add("mode", "unknown mode %q, want one of %v", t.Mode, s.order)
	} else if n := len(t.Players()); n > m.TeamSize {
		fe.Add("party", "%d players do not fit a team of %d in mode %q", n, m.TeamSize, m.Name)
	}
	// Maps are read in the order of their keys, so a ticket's problems
	// are told in one order.
	for _, r := range slices.Sorted(maps.Keys(t.LatenciesMS)) {
		if !regions.Has(r) {
			fe.Add("latencies_ms."+r, "unknown region, want one of %s", regions)
		}
	}
	s.checkAttributes(t.Attributes, fe)
	return fe.Err()
}

func (s *Set) checkAttributes(a *events.Attributes, fe *events.FieldErrors) {
	if a == nil {
		a = &events.Attributes{}
	}
	// A kind over the contract's bound is the contract's to refuse, once
	// (Ticket.Validate); its names are not judged one by one, which a
	// hostile body of thousands would make costly.
	a = withinBounds(a)
	kind := func(field, name, want string) (Attribute, bool) {
		d, ok := s.attributes[name]
		switch {
		case !ok:
			fe.Add(field, "not declared in the rule set")
		case d.Kind != want:
			fe.Add(field, "declared as a %s, not a %s", d.Kind, want)
		default:
			return d, true
		}
		return d, false
	}
	for _, name := range slices.Sorted(maps.Keys(a.Strings)) {
		v := a.Strings[name]
		field := "attributes.strings." + name
		if d, ok := kind(field, name, KindString); ok && len(d.Values) > 0 && !slices.Contains(d.Values, v) {
			fe.Add(field, "%q is not one of %v", v, d.Values)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(a.Sets)) {
		vs := a.Sets[name]
		field := "attributes.sets." + name
		if d, ok := kind(field, name, KindSet); ok {
			for i, v := range vs {
				if !slices.Contains(d.Values, v) {
					fe.Add(index(field, i), "%q is not one of %v", v, d.Values)
				}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(a.Numbers)) {
		v := a.Numbers[name]
		field := "attributes.numbers." + name
		if d, ok := kind(field, name, KindNumber); ok && (d.Min != nil && v < *d.Min || d.Max != nil && v > *d.Max) {
			fe.Add(field, "%g is out of range [%s, %s]", v, bound(d.Min), bound(d.Max))
		}
	}
	for i, tag := range a.Tags {
		kind(index("attributes.tags", i), tag, KindTag)
	}
	for _, name := range slices.Sorted(maps.Keys(s.attributes)) {
		d := s.attributes[name]
		if !d.Required {
			continue
		}
		var has bool
		switch d.Kind {
		case KindString:
			_, has = a.Strings[name]
		case KindSet:
			has = len(a.Sets[name]) > 0
		case KindNumber:
			_, has = a.Numbers[name]
		}
		if !has {
			fe.Add("attributes."+d.Kind+"s."+name, "required")
		}
	}
}

// index names the i-th element of the array field, as JSON counts and as
// events.DecodeTicket names it: a tag or a set member is named by its
// place ("attributes.tags[2]"), a string, set or number by its name.
func index(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

// Attributes are the attributes the rule set declares, by name: what a
// ticket may carry, and must when Required (the find-a-match page asks
// for them). The map is a copy; its values share their slices with the
// set, which no one may change.
func (s *Set) Attributes() map[string]Attribute { return maps.Clone(s.attributes) }

func bound(b *float64) string {
	if b == nil {
		return "any"
	}
	return fmt.Sprintf("%g", *b)
}

// withinBounds is a with each kind over events.MaxAttributes left out.
func withinBounds(a *events.Attributes) *events.Attributes {
	b := *a
	if len(b.Strings) > events.MaxAttributes {
		b.Strings = nil
	}
	if len(b.Sets) > events.MaxAttributes {
		b.Sets = nil
	}
	if len(b.Numbers) > events.MaxAttributes {
		b.Numbers = nil
	}
	if len(b.Tags) > events.MaxAttributes {
		b.Tags = nil
	}
	return &b
}
