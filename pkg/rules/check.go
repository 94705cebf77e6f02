package rules

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Check reports every way a ticket breaks the rule set, each under the
// field it names: an unknown mode, a party larger than the mode's team,
// latencies for a region not served, an attribute not declared or of
// another kind, a value not allowed, a required attribute missing. The
// frontend calls it before it accepts a ticket and the matcher before it
// pools one, so both refuse the same tickets for the same reasons. It
// checks only what the rule set adds: the contract's own bounds are
// events.DecodeTicket's and Ticket.Validate's.
func (s *Set) Check(t *events.Ticket, regions events.Regions) error {
	var fields []events.FieldError
	add := func(field, format string, args ...any) {
		fields = append(fields, events.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if m, ok := s.modes[t.Mode]; !ok {
		add("mode", "unknown mode %q, want one of %v", t.Mode, s.order)
	} else if n := len(t.Players()); n > m.TeamSize {
		add("party", "%d players do not fit a team of %d in mode %q", n, m.TeamSize, m.Name)
	}
	for r := range t.LatenciesMS {
		if !regions.Has(r) {
			add("latencies_ms."+r, "unknown region, want one of %s", regions)
		}
	}
	s.checkAttributes(t.Attributes, add)
	if len(fields) == 0 {
		return nil
	}
	slices.SortFunc(fields, func(a, b events.FieldError) int { return cmp.Compare(a.Field, b.Field) })
	return &events.ValidationError{Kind: "ticket", Fields: fields}
}

func (s *Set) checkAttributes(a *events.Attributes, add func(field, format string, args ...any)) {
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
			add(field, "not declared in the rule set")
		case d.Kind != want:
			add(field, "declared as a %s, not a %s", d.Kind, want)
		default:
			return d, true
		}
		return d, false
	}
	for name, v := range a.Strings {
		field := "attributes.strings." + name
		if d, ok := kind(field, name, KindString); ok && len(d.Values) > 0 && !slices.Contains(d.Values, v) {
			add(field, "%q is not one of %v", v, d.Values)
		}
	}
	for name, vs := range a.Sets {
		field := "attributes.sets." + name
		if d, ok := kind(field, name, KindSet); ok {
			for _, v := range vs {
				if !slices.Contains(d.Values, v) {
					add(field, "%q is not one of %v", v, d.Values)
				}
			}
		}
	}
	for name, v := range a.Numbers {
		field := "attributes.numbers." + name
		if d, ok := kind(field, name, KindNumber); ok && (d.Min != nil && v < *d.Min || d.Max != nil && v > *d.Max) {
			add(field, "%g is out of range [%s, %s]", v, bound(d.Min), bound(d.Max))
		}
	}
	for _, tag := range a.Tags {
		kind("attributes.tags."+tag, tag, KindTag)
	}
	for name, d := range s.attributes {
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
			add("attributes."+d.Kind+"s."+name, "required")
		}
	}
}

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
