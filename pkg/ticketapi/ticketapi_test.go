package ticketapi_test

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// The frontend's OpenAPI description states the answers as declared
// here: the ticket, the error body and its drain, field for field, so
// that a field added to one shows here. (The request is checked where the
// description is embedded: services/frontend/internal/api.)
func TestOpenAPIStatesTheAnswers(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../services/frontend/internal/api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type schema struct {
		Properties map[string]schema `json:"properties"`
	}
	var doc struct {
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	errSchema := doc.Components.Schemas["Error"]
	for _, tc := range []struct {
		name string
		s    schema
		typ  reflect.Type
	}{
		{"Ticket", doc.Components.Schemas["Ticket"], reflect.TypeFor[ticketapi.View]()},
		{"Error", errSchema, reflect.TypeFor[ticketapi.ErrorBody]()},
		{"Error.drained", errSchema.Properties["drained"], reflect.TypeFor[ticketapi.DrainedBody]()},
	} {
		var described, declared []string
		for name := range tc.s.Properties {
			described = append(described, name)
		}
		for i := range tc.typ.NumField() {
			name, _, _ := strings.Cut(tc.typ.Field(i).Tag.Get("json"), ",")
			declared = append(declared, name)
		}
		slices.Sort(described)
		slices.Sort(declared)
		if !slices.Equal(described, declared) {
			t.Errorf("%s describes %q, %s declares %q", tc.name, described, tc.typ, declared)
		}
	}
}

func TestPaths(t *testing.T) {
	t.Parallel()
	if got := ticketapi.EventsPath("t1"); got != "/v1/tickets/t1/events" {
		t.Errorf("events path %q", got)
	}
}

// The event ids are the statuses' ranks, which the frontend sends.
func TestEventIDsAreRanks(t *testing.T) {
	t.Parallel()
	if ticketapi.EventIDQueued != events.StatusQueued.Rank() || ticketapi.EventIDMatched != events.StatusMatched.Rank() || ticketapi.EventIDTerminal != events.StatusAssigned.Rank() {
		t.Error("event ids differ from the statuses' ranks")
	}
	if !ticketapi.IsCancel([]byte(ticketapi.CancelMessage)) || !ticketapi.IsCancel([]byte(` { "type" : "cancel" } `)) || ticketapi.IsCancel([]byte(`{"type":"cancelled"}`)) {
		t.Error("IsCancel does not read CancelMessage alone")
	}
}

// An assignment's URL is an absolute http(s) URL with a host, or the
// clients refuse the view: a game client opens it, and a hostile or
// broken server must not send it to javascript:, file: or data:. The
// page the allocator builds (play.Join.PageURL on http://address:port)
// passes.
func TestValidAssignmentURL(t *testing.T) {
	t.Parallel()
	// The cases are the TypeScript client's too (clients/ts/test/
	// hostile.test.mjs), so that the two checks of one rule agree.
	data, err := os.ReadFile("testdata/assignment_urls.json")
	if err != nil {
		t.Fatal(err)
	}
	type urlCase struct {
		URL string `json:"url"`
		OK  bool   `json:"ok"`
	}
	var cases []urlCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	allocated := play.Join{MatchID: "m1", Token: "x", Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}.PageURL("http://10.0.0.7:7654")
	cases = append(cases, urlCase{allocated, true})
	for _, tc := range cases {
		if got := ticketapi.ValidAssignmentURL(tc.URL); got != tc.OK {
			t.Errorf("ValidAssignmentURL(%q) = %v, want %v", tc.URL, got, tc.OK)
		}
	}
}
