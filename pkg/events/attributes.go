package events

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Bounds of a ticket's attributes. They bound what one ticket can make a
// matcher hold (a waiting ticket keeps its attributes) and what a rule set
// can compare.
const (
	// MaxAttributes bounds the names of each kind (strings, sets,
	// numbers) and the tags.
	MaxAttributes = 16
	// MaxAttributeValueLen bounds a string value, a set member and a tag.
	MaxAttributeValueLen = 64
	// MaxSetMembers bounds the members of one set.
	MaxSetMembers = 16
	// MaxAttributeNumber bounds the magnitude of a number.
	MaxAttributeNumber = 1e9
)

// Attributes are what a game says about a ticket beyond skill and region.
// A rule set (pkg/rules) declares the names a mode accepts and the rules
// that compare them; the contract here only bounds their shape.
//
//	{"strings":{"platform":"pc","build":"1.4.2"},
//	 "sets":{"maps":["dust","nuke"]},
//	 "numbers":{"level":30},
//	 "tags":["newbie"]}
type Attributes struct {
	// Strings are single values compared for equality (platform, build).
	Strings map[string]string `json:"strings,omitempty"`
	// Sets are several values, compared by overlap (preferred maps).
	Sets map[string][]string `json:"sets,omitempty"`
	// Numbers are compared by distance (level, hours played).
	Numbers map[string]float64 `json:"numbers,omitempty"`
	// Tags are present or absent (newbie, voice).
	Tags []string `json:"tags,omitempty"`
}

// UnmarshalJSON reads attributes strictly (unknown fields are errors, as
// everywhere in a ticket) and refuses a null number: read into a float64
// it would be 0, a value the distance rules compare, where the client
// meant nothing.
func (a *Attributes) UnmarshalJSON(data []byte) error {
	var w struct {
		Strings map[string]string   `json:"strings"`
		Sets    map[string][]string `json:"sets"`
		Numbers map[string]*float64 `json:"numbers"`
		Tags    []string            `json:"tags"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	*a = Attributes{Strings: w.Strings, Sets: w.Sets, Tags: w.Tags}
	if w.Numbers != nil {
		a.Numbers = make(map[string]float64, len(w.Numbers))
	}
	for name, v := range w.Numbers {
		if v == nil {
			// A bare *json.UnmarshalTypeError: the decoder adds the path
			// before Field ("attributes.numbers.level").
			return &json.UnmarshalTypeError{Value: "null", Type: reflect.TypeFor[float64](), Field: "numbers." + name}
		}
		a.Numbers[name] = *v
	}
	return nil
}

// Empty reports whether a carries nothing (nil counts as empty).
func (a *Attributes) Empty() bool {
	return a == nil || len(a.Strings) == 0 && len(a.Sets) == 0 && len(a.Numbers) == 0 && len(a.Tags) == 0
}

// Same reports whether a and b say the same: the same names with the same
// values, a set's members and the tags in any order (nil and empty are
// the same).
func (a *Attributes) Same(b *Attributes) bool {
	if a.Empty() || b.Empty() {
		return a.Empty() && b.Empty()
	}
	sameSet := func(x, y []string) bool {
		x, y = slices.Clone(x), slices.Clone(y)
		slices.Sort(x)
		slices.Sort(y)
		return slices.Equal(x, y)
	}
	return maps.Equal(a.Strings, b.Strings) && maps.Equal(a.Numbers, b.Numbers) &&
		maps.EqualFunc(a.Sets, b.Sets, sameSet) && sameSet(a.Tags, b.Tags)
}

// Clone is a deep copy of a (nil for nil).
func (a *Attributes) Clone() *Attributes {
	if a == nil {
		return nil
	}
	c := &Attributes{Strings: maps.Clone(a.Strings), Numbers: maps.Clone(a.Numbers), Tags: slices.Clone(a.Tags)}
	if a.Sets != nil {
		c.Sets = make(map[string][]string, len(a.Sets))
		for k, v := range a.Sets {
			c.Sets[k] = slices.Clone(v)
		}
	}
	return c
}

// HasTag reports whether a carries tag.
func (a *Attributes) HasTag(tag string) bool { return a != nil && slices.Contains(a.Tags, tag) }

// validate checks the shape of a ticket's attributes. A string, a set or a
// number is reported under "attributes.<kind>.<name>", a set member or a
// tag by its place in its array ("attributes.sets.maps[1]",
// "attributes.tags[2]"), as rules.Set.Check names them too; a kind with a
// bad name or too many under "attributes.<kind>".
func (a *Attributes) validate(fe *FieldErrors) {
	if a == nil {
		return
	}
	// A kind over its bound is reported once, its names not one by one:
	// a 64 KiB body holds thousands, and each would be an error to build
	// and send back.
	const f = "attributes."
	if len(a.Strings) > MaxAttributes {
		fe.Add(f+"strings", "has %d names, at most %d allowed", len(a.Strings), MaxAttributes)
		a = &Attributes{Sets: a.Sets, Numbers: a.Numbers, Tags: a.Tags}
	}
	for name, v := range a.Strings {
		if fe.Token(f+"strings", name) {
			attrValue(fe, f+"strings."+name, v)
		}
	}
	if len(a.Sets) > MaxAttributes {
		fe.Add(f+"sets", "has %d names, at most %d allowed", len(a.Sets), MaxAttributes)
		a = &Attributes{Numbers: a.Numbers, Tags: a.Tags}
	}
	for name, vs := range a.Sets {
		if !fe.Token(f+"sets", name) {
			continue
		}
		field := f + "sets." + name
		if len(vs) > MaxSetMembers {
			fe.Add(field, "has %d members, at most %d allowed", len(vs), MaxSetMembers)
			continue
		}
		for i, v := range vs {
			if attrValue(fe, field+"["+strconv.Itoa(i)+"]", v) && slices.Index(vs, v) < i {
				fe.Add(field+"["+strconv.Itoa(i)+"]", "%q is in the set twice", v)
			}
		}
	}
	if len(a.Numbers) > MaxAttributes {
		fe.Add(f+"numbers", "has %d names, at most %d allowed", len(a.Numbers), MaxAttributes)
		a = &Attributes{Tags: a.Tags}
	}
	for name, v := range a.Numbers {
		if fe.Token(f+"numbers", name) && (math.IsNaN(v) || math.Abs(v) > MaxAttributeNumber) {
			fe.Add(f+"numbers."+name, "%v is out of range [-%g, %g]", v, MaxAttributeNumber, MaxAttributeNumber)
		}
	}
	if len(a.Tags) > MaxAttributes {
		fe.Add(f+"tags", "has %d tags, at most %d allowed", len(a.Tags), MaxAttributes)
		return
	}
	for i, tag := range a.Tags {
		field := f + "tags[" + strconv.Itoa(i) + "]"
		if fe.Token(field, tag) && slices.Index(a.Tags, tag) < i {
			fe.Add(field, "tag %q appears twice", tag)
		}
	}
}

// attrValue checks one string value: printable UTF-8, 1 to
// MaxAttributeValueLen bytes. Values are data, never subjects, so any
// text is allowed.
func attrValue(fe *FieldErrors, field, v string) bool {
	switch {
	case v == "":
		fe.Add(field, "empty")
	case len(v) > MaxAttributeValueLen:
		fe.Add(field, "%d bytes long, at most %d allowed", len(v), MaxAttributeValueLen)
	case !utf8.ValidString(v):
		fe.Add(field, "not valid UTF-8")
	default:
		for _, r := range v {
			if unicode.IsControl(r) { // C0, DEL and C1 (U+0080-U+009F)
				fe.Add(field, "has a control character")
				return false
			}
		}
		return true
	}
	return false
}
