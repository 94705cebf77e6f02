package rules

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	s, err := Parse([]byte(`{"attributes":{` +
		`"platform":{"kind":"string","values":["pc","xbox"],"required":true},"build":{"kind":"string"},` +
		`"maps":{"kind":"set","values":["dust","nuke"]},"level":{"kind":"number","min":1,"max":100},"newbie":{"kind":"tag"}},` +
		`"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"},{"name":"2v2","teams":2,"team_size":2,"max_wait":"1m"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	required, err := Parse([]byte(`{"attributes":{"maps":{"kind":"set","values":["dust"],"required":true},` +
		`"level":{"kind":"number","required":true}},"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	regions := events.Regions{"eu", "us"}
	pc := func(a events.Attributes) *events.Attributes {
		if a.Strings == nil {
			a.Strings = map[string]string{}
		}
		a.Strings["platform"] = "pc"
		return &a
	}
	tests := []struct {
		name   string
		set    *Set
		t      events.Ticket
		fields []string // nil: accepted
	}{
		{name: "accepted", t: events.Ticket{Mode: "1v1", PlayerID: "a", LatenciesMS: map[string]int{"eu": 20, "us": 90},
			Attributes: pc(events.Attributes{Strings: map[string]string{"build": "any text 1.4"}, Sets: map[string][]string{"maps": {"dust", "nuke"}},
				Numbers: map[string]float64{"level": 1}, Tags: []string{"newbie"}})}},
		{name: "a party of the team size", t: events.Ticket{Mode: "2v2", Party: []string{"a", "b"}, Attributes: pc(events.Attributes{})}},
		{name: "a level at the max", t: events.Ticket{Mode: "1v1", PlayerID: "a", Attributes: pc(events.Attributes{Numbers: map[string]float64{"level": 100}})}},
		{name: "unknown mode", t: events.Ticket{Mode: "3v3", PlayerID: "a", Attributes: pc(events.Attributes{})}, fields: []string{"mode"}},
		{name: "a party above the team size", t: events.Ticket{Mode: "2v2", Party: []string{"a", "b", "c"}, Attributes: pc(events.Attributes{})}, fields: []string{"party"}},
		{name: "a party in 1v1", t: events.Ticket{Mode: "1v1", Party: []string{"a", "b"}, Attributes: pc(events.Attributes{})}, fields: []string{"party"}},
		{name: "latency to an unknown region", t: events.Ticket{Mode: "1v1", PlayerID: "a", LatenciesMS: map[string]int{"eu": 20, "ap": 30},
			Attributes: pc(events.Attributes{})}, fields: []string{"latencies_ms.ap"}},
		{name: "undeclared string", t: events.Ticket{Mode: "1v1", PlayerID: "a", Attributes: pc(events.Attributes{Strings: map[string]string{"color": "red"}})},
			fields: []string{"attributes.strings.color"}},
		{name: "undeclared set", t: events.Ticket{Mode: "1v1", PlayerID: "a", Attributes: pc(events.Attributes{Sets: map[string][]string{"modes": {"x"}}})},
			fields: []string{"attributes.sets.modes"}},
		{name: "undeclared number", t: events.Ticket{Mode: "1v1", PlayerID: "a", Attributes: pc(events.Attributes{Numbers: map[string]float64{"hours": 3}})},
			fields: []string{"attributes.numbers.hours"}},
		{name: "undeclared tag", t: events.Ticket{Mode: "1v1", PlayerID: "a", Attributes: pc(events.Attributes{Tags: []string{"veteran"}})},
			fields: []string{"attributes.tags[0]"}},
		{name: "a set as a string", t: events.Ticket{Mode: "1v1", PlayerID: "a", Attributes: pc(events.Attributes{Strings: map[string]string{"maps": "dust"}})},
			fields: []string{"attributes.strings.maps"}},
		{name: "a string as a set", t: events.Ticket{Mode: "1v1", PlayerID: "a", Attributes: pc(events.Attributes{Sets: map[string][]string{"build": {"1"}}})},
			fields: []string{"attributes.sets.build"}},
		{name: "a tag as a number", t: events.Ticket{Mode: "1v1", PlayerID: "a", Attributes: pc(events.Attributes{Numbers: map[string]float64{"newbie": 1}})},
			fields: []string{"attributes.numbers.newbie"}},
		{name: "a string as a tag", t: events.Ticket{Mode: "1v1", PlayerID: "a", Attributes: pc(events.Attributes{Tags: []string{"newbie", "build"}})},
			fields: []string{"attributes.tags[1]"}},
		{name: "a string value not allowed", t: events.Ticket{Mode: "1v1", PlayerID: "a", Attributes: &events.Attributes{Strings: map[string]string{"platform": "amiga"}}},
			fields: []string{"attributes.strings.platform"}},
		{name: "a set member not allowed", t: events.Ticket{Mode: "1v1", PlayerID: "a", Attributes: pc(events.Attributes{Sets: map[string][]string{"maps": {"dust", "vertigo"}}})},
			fields: []string{"attributes.sets.maps[1]"}},
		{name: "a number below min", t: events.Ticket{Mode: "1v1", PlayerID: "a", Attributes: pc(events.Attributes{Numbers: map[string]float64{"level": 0.5}})},
			fields: []string{"attributes.numbers.level"}},
		{name: "a number above max", t: events.Ticket{Mode: "1v1", PlayerID: "a", Attributes: pc(events.Attributes{Numbers: map[string]float64{"level": 101}})},
			fields: []string{"attributes.numbers.level"}},
		{name: "a required string missing", t: events.Ticket{Mode: "1v1", PlayerID: "a", Attributes: &events.Attributes{Tags: []string{"newbie"}}},
			fields: []string{"attributes.strings.platform"}},
		{name: "no attributes at all", t: events.Ticket{Mode: "1v1", PlayerID: "a"}, fields: []string{"attributes.strings.platform"}},
		{name: "required set and number missing", set: required, t: events.Ticket{Mode: "1v1", PlayerID: "a"},
			fields: []string{"attributes.numbers.level", "attributes.sets.maps"}},
		{name: "a required set empty", set: required, t: events.Ticket{Mode: "1v1", PlayerID: "a",
			Attributes: &events.Attributes{Sets: map[string][]string{"maps": {}}, Numbers: map[string]float64{"level": 0}}},
			fields: []string{"attributes.sets.maps"}},
		{name: "required set and number given", set: required, t: events.Ticket{Mode: "1v1", PlayerID: "a",
			Attributes: &events.Attributes{Sets: map[string][]string{"maps": {"dust"}}, Numbers: map[string]float64{"level": -5}}}},
		{name: "every problem, in the order checked", t: events.Ticket{Mode: "5v5", PlayerID: "a", LatenciesMS: map[string]int{"ap": 1},
			Attributes: &events.Attributes{Strings: map[string]string{"color": "red"}, Numbers: map[string]float64{"level": 1000}}},
			fields: []string{"mode", "latencies_ms.ap", "attributes.strings.color", "attributes.numbers.level", "attributes.strings.platform"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			set := s
			if tt.set != nil {
				set = tt.set
			}
			err := set.Check(&tt.t, regions)
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			var ve *events.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, events.ErrInvalid) || ve.Kind != "ticket" {
				t.Fatalf("err = %v, want a ticket *events.ValidationError", err)
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

// TestCheckDefault: the rule set without a file takes the tickets it
// always took, and no attribute at all.
func TestCheckDefault(t *testing.T) {
	t.Parallel()
	s := Default()
	regions := events.Regions{"eu"}
	for _, tk := range []events.Ticket{
		{Mode: "1v1", PlayerID: "a"}, {Mode: "5v5", Party: []string{"a", "b", "c", "d", "e"}}, {Mode: "ffa", PlayerID: "a", LatenciesMS: map[string]int{"eu": 1}},
	} {
		if err := s.Check(&tk, regions); err != nil {
			t.Errorf("Check(%+v): %v", tk, err)
		}
	}
	tk := events.Ticket{Mode: "1v1", PlayerID: "a", Attributes: &events.Attributes{Tags: []string{"newbie"}}}
	if err := s.Check(&tk, regions); err == nil {
		t.Error("the default rule set took an attribute")
	}
}

// A hostile body of thousands of tags (or names of any kind) is refused
// by its count, once, not by one error per name: building and sending
// thousands of errors cost a frontend hundreds of milliseconds a request.
func TestCheckReportsAnOversizedKindOnce(t *testing.T) {
	s, err := Parse([]byte(`{"attributes":{"newbie":{"kind":"tag"}},"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	a := &events.Attributes{Strings: map[string]string{}}
	for i := range 5000 {
		a.Tags = append(a.Tags, fmt.Sprintf("t%d", i))
		a.Strings[fmt.Sprintf("s%d", i)] = "x"
	}
	tk := events.Ticket{SchemaVersion: events.SchemaVersion, PlayerID: "p", Mode: "1v1", Skill: 1, Attributes: a}
	var ve *events.ValidationError
	for what, err := range map[string]error{"Check": s.Check(&tk, events.Regions{"eu"}), "Validate": tk.Validate()} {
		if what == "Check" && err == nil {
			continue // the contract's bound is Validate's to report
		}
		if !errors.As(err, &ve) || len(ve.Fields) > 4 {
			t.Errorf("%s: %d field errors, want the oversized kinds reported once each: %v", what, len(ve.Fields), err)
		}
	}
}

// TestCheckNamesFieldsAsTheDecoderDoes: a value at one place in a ticket
// is named the same whether the contract refuses it (events.DecodeTicket)
// or the rule set does (Check): a tag and a set member by their index, as
// in the JSON array, a string and a number by their name. A client that
// points at the field it got back finds one spelling.
func TestCheckNamesFieldsAsTheDecoderDoes(t *testing.T) {
	t.Parallel()
	s, err := Parse([]byte(`{"attributes":{"build":{"kind":"string","values":["1.4"]},` +
		`"maps":{"kind":"set","values":["dust","nuke"]},"level":{"kind":"number","max":100},"newbie":{"kind":"tag"}},` +
		`"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, contract, rules string // attributes refused by each at the same place
		field                 string
	}{
		{"string", `{"strings":{"build":""}}`, `{"strings":{"build":"2.0"}}`, "attributes.strings.build"},
		{"set member", `{"sets":{"maps":["dust","dust"]}}`, `{"sets":{"maps":["dust","vertigo"]}}`, "attributes.sets.maps[1]"},
		{"number", `{"numbers":{"level":2e9}}`, `{"numbers":{"level":500}}`, "attributes.numbers.level"},
		{"tag", `{"tags":["newbie","newbie"]}`, `{"tags":["newbie","vip"]}`, "attributes.tags[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := func(attrs string) []byte {
				return []byte(`{"schema_version":1,"ticket_id":"t1","player_id":"a","mode":"1v1","skill":1,` +
					`"created_at":"2026-11-21T00:00:00Z","attributes":` + attrs + `}`)
			}
			_, err := events.DecodeTicket(body(tt.contract))
			if got := fieldNames(err); !reflect.DeepEqual(got, []string{tt.field}) {
				t.Errorf("DecodeTicket named %q, want %s (%v)", got, tt.field, err)
			}
			tk, err := events.DecodeTicket(body(tt.rules))
			if err != nil {
				t.Fatalf("DecodeTicket: %v", err)
			}
			err = s.Check(&tk, events.Regions{"eu"})
			if got := fieldNames(err); !reflect.DeepEqual(got, []string{tt.field}) {
				t.Errorf("Check named %q, want %s (%v)", got, tt.field, err)
			}
		})
	}
}

func fieldNames(err error) []string {
	var ve *events.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var names []string
	for _, f := range ve.Fields {
		names = append(names, f.Field)
	}
	return names
}
