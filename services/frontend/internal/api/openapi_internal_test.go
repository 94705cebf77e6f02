package api

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

// The OpenAPI description states the request as the code reads it: every
// field of tickets.Request, and the attributes' bounds of the contract
// (pkg/events), so that a change to either shows here.
func TestOpenAPIStatesTheRequestAndItsBounds(t *testing.T) {
	t.Parallel()
	type schema struct {
		Properties           map[string]schema `json:"properties"`
		AdditionalProperties any               `json:"additionalProperties"`
		MaxProperties        int               `json:"maxProperties"`
		MaxItems             int               `json:"maxItems"`
		MaxLength            int               `json:"maxLength"`
		Maximum              float64           `json:"maximum"`
		Minimum              float64           `json:"minimum"`
		Items                *schema           `json:"items"`
	}
	var doc struct {
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	if err := yaml.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var described, read []string
	for name := range doc.Components.Schemas["TicketRequest"].Properties {
		described = append(described, name)
	}
	rt := reflect.TypeFor[tickets.Request]()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		read = append(read, name)
	}
	slices.Sort(described)
	slices.Sort(read)
	if !slices.Equal(described, read) {
		t.Fatalf("TicketRequest describes %q, the frontend reads %q", described, read)
	}

	// additionalProperties of an object schema, decoded as a schema.
	inner := func(s schema) schema {
		b, _ := yaml.Marshal(s.AdditionalProperties)
		var out schema
		if err := yaml.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	a := doc.Components.Schemas["Attributes"].Properties
	strs, sets, nums, tags := a["strings"], a["sets"], a["numbers"], a["tags"]
	for name, got := range map[string]int{"strings": strs.MaxProperties, "sets": sets.MaxProperties, "numbers": nums.MaxProperties, "tags": tags.MaxItems} {
		if got != events.MaxAttributes {
			t.Errorf("attributes.%s: at most %d stated, the contract allows %d", name, got, events.MaxAttributes)
		}
	}
	if got := inner(strs).MaxLength; got != events.MaxAttributeValueLen {
		t.Errorf("a string value: %d bytes stated, the contract allows %d", got, events.MaxAttributeValueLen)
	}
	if set := inner(sets); set.MaxItems != events.MaxSetMembers || set.Items == nil || set.Items.MaxLength != events.MaxAttributeValueLen {
		t.Errorf("a set: %+v stated, the contract allows %d members of %d bytes", set, events.MaxSetMembers, events.MaxAttributeValueLen)
	}
	if n := inner(nums); n.Maximum != events.MaxAttributeNumber || n.Minimum != -events.MaxAttributeNumber {
		t.Errorf("a number: [%g, %g] stated, the contract allows ±%g", n.Minimum, n.Maximum, float64(events.MaxAttributeNumber))
	}
}
