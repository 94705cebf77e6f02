package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// withAttrs is a valid ticket carrying attrs (a JSON object).
func withAttrs(attrs string) string {
	return `{"player_id":"a","skill":1,"attributes":` + attrs + `}`
}

// names is n attributes of one kind, "a0".."a<n-1>", each valued v (JSON).
func names(n int, v string) string {
	kv := make([]string, n)
	for i := range kv {
		kv[i] = fmt.Sprintf(`"a%d":%s`, i, v)
	}
	return "{" + strings.Join(kv, ",") + "}"
}

// list is n distinct JSON strings "m0".."m<n-1>".
func list(n int) string {
	vs := make([]string, n)
	for i := range vs {
		vs[i] = fmt.Sprintf(`"m%d"`, i)
	}
	return "[" + strings.Join(vs, ",") + "]"
}

func TestDecodeTicketAttributes(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxAttributeValueLen)
	tests := []struct {
		name string
		in   string
		// fields are the fields the error must name, in order; nil = valid.
		fields []string
		check  func(t *testing.T, a *Attributes)
	}{
		{name: "every kind", in: withAttrs(`{"strings":{"platform":"pc","build":"1.4.2 (rc)"},"sets":{"maps":["dust","nuke"]},"numbers":{"level":30.5},"tags":["newbie","voice"]}`),
			check: func(t *testing.T, a *Attributes) {
				want := &Attributes{Strings: map[string]string{"platform": "pc", "build": "1.4.2 (rc)"}, Sets: map[string][]string{"maps": {"dust", "nuke"}},
					Numbers: map[string]float64{"level": 30.5}, Tags: []string{"newbie", "voice"}}
				if !reflect.DeepEqual(a, want) || a.Empty() || !a.HasTag("voice") || a.HasTag("platform") {
					t.Errorf("attributes = %+v", a)
				}
			}},
		{name: "null", in: withAttrs(`null`), check: func(t *testing.T, a *Attributes) {
			if a != nil || !a.Empty() || a.HasTag("x") {
				t.Errorf("attributes = %+v", a)
			}
		}},
		{name: "empty", in: withAttrs(`{"strings":{},"sets":{},"numbers":{},"tags":[]}`), check: func(t *testing.T, a *Attributes) {
			if !a.Empty() {
				t.Errorf("attributes %+v not Empty", a)
			}
		}},
		{name: "16 of each kind", in: withAttrs(`{"strings":` + names(MaxAttributes, `"v"`) + `,"sets":` + names(MaxAttributes, `["v"]`) +
			`,"numbers":` + names(MaxAttributes, `1`) + `,"tags":` + list(MaxAttributes) + `}`)},
		{name: "a 64-byte value", in: withAttrs(`{"strings":{"build":"` + long + `"},"sets":{"maps":["` + long + `"]}}`)},
		{name: "a value of 63 bytes in 21 runes", in: withAttrs(`{"strings":{"city":"` + strings.Repeat("€", 21) + `"}}`)},
		{name: "text beyond ASCII", in: withAttrs(`{"strings":{"city":"Zürich","clan":"東京 ⚔"}}`)},
		{name: "16 set members", in: withAttrs(`{"sets":{"maps":` + list(MaxSetMembers) + `}}`)},
		{name: "an empty set", in: withAttrs(`{"sets":{"maps":[]}}`)},
		{name: "numbers at the bounds", in: withAttrs(`{"numbers":{"a":1e9,"b":-1e9,"c":0,"d":-0.5}}`)},

		{name: "not an object", in: withAttrs(`[]`), fields: []string{"attributes"}},
		{name: "unknown kind", in: withAttrs(`{"flags":["x"]}`), fields: []string{"flags"}},
		{name: "a string as a number", in: withAttrs(`{"strings":{"p":1}}`), fields: []string{"attributes.strings"}},
		{name: "a set as a string", in: withAttrs(`{"sets":{"maps":"dust"}}`), fields: []string{"attributes.sets"}},
		{name: "a number as a string", in: withAttrs(`{"numbers":{"level":"30"}}`), fields: []string{"attributes.numbers"}},
		{name: "tags as a string", in: withAttrs(`{"tags":"newbie"}`), fields: []string{"attributes.tags"}},
		{name: "17 strings", in: withAttrs(`{"strings":` + names(MaxAttributes+1, `"v"`) + `}`), fields: []string{"attributes.strings"}},
		{name: "17 sets", in: withAttrs(`{"sets":` + names(MaxAttributes+1, `["v"]`) + `}`), fields: []string{"attributes.sets"}},
		{name: "17 numbers", in: withAttrs(`{"numbers":` + names(MaxAttributes+1, `1`) + `}`), fields: []string{"attributes.numbers"}},
		{name: "17 tags", in: withAttrs(`{"tags":` + list(MaxAttributes+1) + `}`), fields: []string{"attributes.tags"}},
		{name: "a 65-byte value", in: withAttrs(`{"strings":{"build":"` + long + `x"}}`), fields: []string{"attributes.strings.build"}},
		{name: "a value of 66 bytes in 22 runes", in: withAttrs(`{"strings":{"city":"` + strings.Repeat("€", 22) + `"}}`), fields: []string{"attributes.strings.city"}},
		{name: "an empty value", in: withAttrs(`{"strings":{"build":""}}`), fields: []string{"attributes.strings.build"}},
		{name: "a newline", in: withAttrs(`{"strings":{"build":"1.4\n2"}}`), fields: []string{"attributes.strings.build"}},
		{name: "a tab", in: withAttrs(`{"strings":{"build":"1.4\t2"}}`), fields: []string{"attributes.strings.build"}},
		{name: "a NUL", in: withAttrs(`{"strings":{"build":"1.4\u0000"}}`), fields: []string{"attributes.strings.build"}},
		{name: "a DEL", in: withAttrs(`{"strings":{"build":"1.4\u007f"}}`), fields: []string{"attributes.strings.build"}},
		{name: "a C1 control (NEL)", in: withAttrs(`{"strings":{"build":"1.4\u0085"}}`), fields: []string{"attributes.strings.build"}},
		{name: "a bad string name", in: withAttrs(`{"strings":{"plat.form":"pc"}}`), fields: []string{"attributes.strings"}},
		{name: "an empty string name", in: withAttrs(`{"strings":{"":"pc"}}`), fields: []string{"attributes.strings"}},
		{name: "a 65-byte name", in: withAttrs(`{"numbers":{"` + long + `x":1}}`), fields: []string{"attributes.numbers"}},
		{name: "a bad set name", in: withAttrs(`{"sets":{"maps>":["dust"]}}`), fields: []string{"attributes.sets"}},
		{name: "a bad number name", in: withAttrs(`{"numbers":{"le vel":1}}`), fields: []string{"attributes.numbers"}},
		{name: "17 set members", in: withAttrs(`{"sets":{"maps":` + list(MaxSetMembers+1) + `}}`), fields: []string{"attributes.sets.maps"}},
		{name: "a set member twice", in: withAttrs(`{"sets":{"maps":["dust","nuke","dust"]}}`), fields: []string{"attributes.sets.maps[2]"}},
		{name: "an empty set member", in: withAttrs(`{"sets":{"maps":["dust",""]}}`), fields: []string{"attributes.sets.maps[1]"}},
		{name: "a 65-byte set member", in: withAttrs(`{"sets":{"maps":["` + long + `x"]}}`), fields: []string{"attributes.sets.maps[0]"}},
		{name: "a set member with a control", in: withAttrs(`{"sets":{"maps":["du\u001bst"]}}`), fields: []string{"attributes.sets.maps[0]"}},
		{name: "a tag twice", in: withAttrs(`{"tags":["newbie","newbie"]}`), fields: []string{"attributes.tags[1]"}},
		{name: "a bad tag", in: withAttrs(`{"tags":["voice","new bie"]}`), fields: []string{"attributes.tags[1]"}},
		{name: "an empty tag", in: withAttrs(`{"tags":[""]}`), fields: []string{"attributes.tags[0]"}},
		{name: "a number above 1e9", in: withAttrs(`{"numbers":{"level":1000000001}}`), fields: []string{"attributes.numbers.level"}},
		{name: "a number below -1e9", in: withAttrs(`{"numbers":{"level":-1e10}}`), fields: []string{"attributes.numbers.level"}},
		{name: "a number beyond float64", in: withAttrs(`{"numbers":{"level":1e400}}`), fields: []string{"attributes.numbers"}},
		{name: "one of each kind, with the ticket's own", in: `{"player_id":"a","skill":-1,"attributes":` +
			`{"strings":{"a":""},"sets":{"b":["x","x"]},"numbers":{"c":2e9},"tags":["d.e"]}}`,
			fields: []string{"skill", "attributes.strings.a", "attributes.sets.b[1]", "attributes.numbers.c", "attributes.tags[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tk, err := DecodeTicket([]byte(tt.in))
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("DecodeTicket: %v", err)
				}
				if tt.check != nil {
					tt.check(t, tk.Attributes)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
			}
			if !reflect.DeepEqual(got, tt.fields) {
				t.Fatalf("fields = %q, want %q (%v)", got, tt.fields, err)
			}
		})
	}
}

// TestValidateAttributes: what JSON cannot carry but code can build.
func TestValidateAttributes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		attrs Attributes
		field string
	}{
		{"NaN", Attributes{Numbers: map[string]float64{"level": math.NaN()}}, "attributes.numbers.level"},
		{"infinity", Attributes{Numbers: map[string]float64{"level": math.Inf(-1)}}, "attributes.numbers.level"},
		{"invalid UTF-8", Attributes{Strings: map[string]string{"build": "1.4\xff"}}, "attributes.strings.build"},
		{"invalid UTF-8 in a set", Attributes{Sets: map[string][]string{"maps": {"\xc3"}}}, "attributes.sets.maps[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tk := Ticket{SchemaVersion: SchemaVersion, PlayerID: "a", Mode: DefaultMode, Attributes: &tt.attrs}
			var ve *ValidationError
			if err := tk.Validate(); !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != tt.field {
				t.Fatalf("Validate = %v, want one error for %s", err, tt.field)
			}
		})
	}
}

// TestTicketForKeepsAttributes: a ticket published again (an offer, a
// requeue) carries what the rules compare, and is still valid.
func TestTicketForKeepsAttributes(t *testing.T) {
	t.Parallel()
	attrs := &Attributes{Strings: map[string]string{"platform": "pc"}, Sets: map[string][]string{"maps": {"dust"}},
		Numbers: map[string]float64{"level": 30}, Tags: []string{"newbie"}}
	mt := MatchTicket{TicketID: "t1", Players: []string{"a", "b"}, Skill: 1200, LatenciesMS: map[string]int{"eu": 20}, Attributes: attrs}
	tk := TicketFor(mt, "2v2")
	if !reflect.DeepEqual(tk.Attributes, attrs) || !reflect.DeepEqual(tk.LatenciesMS, mt.LatenciesMS) {
		t.Fatalf("TicketFor = %+v", tk)
	}
	data, err := json.Marshal(tk)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeTicket(data)
	if err != nil {
		t.Fatalf("DecodeTicket(%s): %v", data, err)
	}
	if !reflect.DeepEqual(back.Attributes, attrs) {
		t.Errorf("attributes after a round trip %+v, want %+v", back.Attributes, attrs)
	}
}

// FuzzDecodeTicketAttributes: whatever a client sends, an accepted
// ticket's attributes are within every bound.
func FuzzDecodeTicketAttributes(f *testing.F) {
	for _, s := range []string{
		`{"strings":{"platform":"pc"},"sets":{"maps":["dust","nuke"]},"numbers":{"level":30},"tags":["newbie"]}`,
		`{"strings":{"a":"\u0001"}}`, `{"sets":{"m":["x","x"]}}`, `{"numbers":{"n":1e9}}`, `{"tags":["a","a"]}`,
		`{"strings":{"a b":"c"}}`, `null`, `{}`, `{"strings":{"city":"Zürich"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, attrs []byte) {
		tk, err := DecodeTicket([]byte(withAttrs(string(attrs))))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if err := attrsWithinBounds(tk.Attributes); err != nil {
			t.Fatalf("accepted %s: %v", attrs, err)
		}
	})
}

// attrsWithinBounds states the bounds of Attributes again, independently
// of validate, for the fuzz target.
func attrsWithinBounds(a *Attributes) error {
	if a == nil {
		return nil
	}
	text := func(v string) bool {
		if v == "" || len(v) > MaxAttributeValueLen || !utf8.ValidString(v) {
			return false
		}
		for _, r := range v {
			if unicode.IsControl(r) {
				return false
			}
		}
		return true
	}
	if len(a.Strings) > MaxAttributes || len(a.Sets) > MaxAttributes || len(a.Numbers) > MaxAttributes || len(a.Tags) > MaxAttributes {
		return errors.New("too many names")
	}
	for name, v := range a.Strings {
		if CheckToken(name) != nil || !text(v) {
			return fmt.Errorf("string %q = %q", name, v)
		}
	}
	for name, vs := range a.Sets {
		seen := map[string]bool{}
		for _, v := range vs {
			if !text(v) || seen[v] {
				return fmt.Errorf("set %q = %q", name, vs)
			}
			seen[v] = true
		}
		if CheckToken(name) != nil || len(vs) > MaxSetMembers {
			return fmt.Errorf("set %q = %q", name, vs)
		}
	}
	for name, v := range a.Numbers {
		if CheckToken(name) != nil || !(math.Abs(v) <= MaxAttributeNumber) {
			return fmt.Errorf("number %q = %v", name, v)
		}
	}
	seen := map[string]bool{}
	for _, tag := range a.Tags {
		if CheckToken(tag) != nil || seen[tag] {
			return fmt.Errorf("tags %q", a.Tags)
		}
		seen[tag] = true
	}
	return nil
}

// A null number is refused, by name: read as 0 it was a value the
// distance rules compared, where the client meant nothing. Unknown fields
// inside attributes stay refused.
func TestDecodeTicketRefusesANullNumber(t *testing.T) {
	_, err := DecodeTicket([]byte(`{"player_id":"p","skill":1,"attributes":{"numbers":{"level":null}}}`))
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != "attributes.numbers.level" {
		t.Fatalf("got %v, want attributes.numbers.level refused", err)
	}
	if _, err := DecodeTicket([]byte(`{"player_id":"p","skill":1,"attributes":{"colour":{"a":"b"}}}`)); err == nil {
		t.Fatal("an unknown field inside attributes was accepted")
	}
	tk, err := DecodeTicket([]byte(`{"player_id":"p","skill":1,"attributes":{"numbers":{"level":0}}}`))
	if err != nil || tk.Attributes.Numbers["level"] != 0 || len(tk.Attributes.Numbers) != 1 {
		t.Fatalf("a real 0: %+v, %v", tk.Attributes, err)
	}
}

func TestAttributesSame(t *testing.T) {
	t.Parallel()
	a := &Attributes{Strings: map[string]string{"platform": "pc"}, Sets: map[string][]string{"maps": {"dust", "nuke"}}, Numbers: map[string]float64{"level": 3}, Tags: []string{"x", "y"}}
	if !a.Same(&Attributes{Strings: map[string]string{"platform": "pc"}, Sets: map[string][]string{"maps": {"nuke", "dust"}}, Numbers: map[string]float64{"level": 3}, Tags: []string{"y", "x"}}) {
		t.Error("the same in another order")
	}
	for name, b := range map[string]*Attributes{
		"nil":           nil,
		"a string":      {Strings: map[string]string{"platform": "console"}, Sets: a.Sets, Numbers: a.Numbers, Tags: a.Tags},
		"a set member":  {Strings: a.Strings, Sets: map[string][]string{"maps": {"dust"}}, Numbers: a.Numbers, Tags: a.Tags},
		"a number":      {Strings: a.Strings, Sets: a.Sets, Numbers: map[string]float64{"level": 4}, Tags: a.Tags},
		"a tag missing": {Strings: a.Strings, Sets: a.Sets, Numbers: a.Numbers, Tags: []string{"x"}},
	} {
		if a.Same(b) || b.Same(a) {
			t.Errorf("%s: same", name)
		}
	}
	if !(*Attributes)(nil).Same(&Attributes{}) {
		t.Error("nil and empty differ")
	}
	c := a.Clone()
	c.Sets["maps"][0], c.Tags[0] = "inferno", "z"
	if a.Sets["maps"][0] != "dust" || a.Tags[0] != "x" {
		t.Error("a clone shares its slices")
	}
}
