package ticketapi_test

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// Each builder's text is read back by its parser, and the error body of
// each refusal is told apart by the kind checks the clients use.
func TestTextsRoundTrip(t *testing.T) {
	t.Parallel()
	d, text, ok := ticketapi.ParseRetryAfterCloseReason(ticketapi.RetryAfterCloseReason(30*time.Second, ticketapi.DrainedReason("eu.gold", "upgrade: back at 5")))
	if !ok || d != 30*time.Second {
		t.Fatalf("retry after: %v %q %v", d, text, ok)
	}
	drained, ok := ticketapi.ParseDrainedReason(text)
	if !ok || drained != (ticketapi.DrainedBody{Shard: "eu.gold", Reason: "upgrade: back at 5"}) {
		t.Fatalf("drained: %+v %v from %q", drained, ok, text)
	}
	if got := ticketapi.ParseSuggestedRegion(ticketapi.RegionFullError("eu", "us-east")); got != "us-east" {
		t.Fatalf("suggested region: %q", got)
	}
	for _, text := range []string{ticketapi.RegionFullError("eu", ""), "region eu has room", ticketapi.RegionFullError("eu", "us") + " now", ticketapi.RegionFullError("eu", "us east"), ticketapi.DrainedReason("eu.gold", "region us has room")} {
		if got := ticketapi.ParseSuggestedRegion(text); got != "" {
			t.Errorf("%q: suggests %q", text, got)
		}
	}
	for _, tc := range []struct {
		name                   string
		body                   ticketapi.ErrorBody
		overloaded, regionFull bool
	}{
		{"overloaded", ticketapi.ErrorBody{Error: ticketapi.OverloadedError}, true, false},
		{"full", ticketapi.ErrorBody{Error: ticketapi.RegionFullError("eu", "")}, false, true},
		{"full, suggesting", ticketapi.ErrorBody{Error: ticketapi.RegionFullError("eu", "us"), SuggestRegion: "us"}, false, true},
		{"drained", ticketapi.ErrorBody{Error: ticketapi.DrainedReason("eu.gold", "out of capacity soon")}, false, false},
	} {
		if tc.body.Overloaded() != tc.overloaded || tc.body.RegionFull() != tc.regionFull {
			t.Errorf("%s: %+v: overloaded %v, region full %v", tc.name, tc.body, tc.body.Overloaded(), tc.body.RegionFull())
		}
	}
}

func TestParseRefusesOtherTexts(t *testing.T) {
	t.Parallel()
	for _, reason := range []string{"", "retry after s: x", "retry after 1234567s: x", "retry after -1s: x", "retry after 3 s: x", "retry after 30m: x", "ticket service unavailable"} {
		if d, text, ok := ticketapi.ParseRetryAfterCloseReason(reason); ok || d != 0 || text != reason {
			t.Errorf("%q: %v %q %v, want no wait", reason, d, text, ok)
		}
	}
	for _, text := range []string{"", "shard  is drained: x", "shard eu gold is drained: x", "region eu is full", "shard eu.gold drained"} {
		if d, ok := ticketapi.ParseDrainedReason(text); ok {
			t.Errorf("%q: read as %+v", text, d)
		}
	}
}

func TestWSQueryRoundTrip(t *testing.T) {
	t.Parallel()
	skill := 1650
	attrs := events.Attributes{Strings: map[string]string{"platform": "pc"}, Tags: []string{"newbie"}}
	for _, req := range []ticketapi.Request{
		{},
		{Region: "eu", Mode: "1v1", PlayerID: "p&1=x", Skill: &skill, Attributes: &attrs},
	} {
		q, err := req.WSQuery()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ticketapi.RequestFromQuery(q)
		if err != nil || !reflect.DeepEqual(got, req) {
			t.Errorf("%+v: read back %+v, %v (query %s)", req, got, err, q.Encode())
		}
	}
	if _, err := (ticketapi.Request{Party: []string{"a", "b"}}).WSQuery(); !errors.Is(err, ticketapi.ErrNotInQuery) {
		t.Errorf("a party in a query: %v", err)
	}
}

func TestRequestFromQueryNamesTheField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ query, field string }{
		{"skill=high", "skill"},
		{`attributes={"strings":{"platform":1}}`, "attributes.strings"},
		{"attributes=[", "attributes"},
	} {
		q, _ := url.ParseQuery(tc.query)
		_, err := ticketapi.RequestFromQuery(q)
		var ve *events.ValidationError
		if !errors.As(err, &ve) || len(ve.Fields) == 0 || !strings.HasPrefix(ve.Fields[0].Field, tc.field) {
			t.Errorf("%s: %v, want a field under %s", tc.query, err, tc.field)
		}
	}
}

func FuzzParseCloseReason(f *testing.F) {
	f.Add("retry after 30s: shard eu.gold is drained: x")
	f.Add("shard a is drained: ")
	f.Fuzz(func(t *testing.T, reason string) {
		if d, text, ok := ticketapi.ParseRetryAfterCloseReason(reason); ok {
			again, text2, ok2 := ticketapi.ParseRetryAfterCloseReason(ticketapi.RetryAfterCloseReason(d, text))
			if d < 0 || d > 999999*time.Second || !ok2 || again != d || text2 != text {
				t.Errorf("%q read as %v %q, which reads back as %v %q %v", reason, d, text, again, text2, ok2)
			}
		}
		if dr, ok := ticketapi.ParseDrainedReason(reason); ok && ticketapi.DrainedReason(dr.Shard, dr.Reason) != reason {
			t.Errorf("%q read as %+v, which writes %q", reason, dr, ticketapi.DrainedReason(dr.Shard, dr.Reason))
		}
	})
}
