package api_test

import (
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// optionRE finds the mode choices of the find-a-match page.
var optionRE = regexp.MustCompile(`<option value="([^"]*)"( selected)?>`)

// getPage is the find-a-match page of e's frontend.
func getPage(t *testing.T, e *env) string {
	t.Helper()
	res, err := http.Get(e.http.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("page: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return string(b)
}

// TestPageOffersTheModesTheFrontendTakes: the page lists exactly the
// modes of the rule set in force (1v1 and 2v2 here, not the default rule
// set's 5v5 or ffa), the default one chosen; each mode it offers is
// taken, and one it does not offer is refused with the field named.
func TestPageOffersTheModesTheFrontendTakes(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	page := getPage(t, e)
	var offered, selected []string
	for _, m := range optionRE.FindAllStringSubmatch(page, -1) {
		offered = append(offered, m[1])
		if m[2] != "" {
			selected = append(selected, m[1])
		}
	}
	if !slices.Equal(offered, []string{"1v1", "2v2"}) || !slices.Equal(selected, []string{"1v1"}) {
		t.Fatalf("the page offers %q with %q selected, want 1v1 (selected) and 2v2", offered, selected)
	}
	for _, mode := range offered {
		if code, body := e.post(t, `{"player_id":"p-`+mode+`","skill":1650,"region":"eu","mode":"`+mode+`"}`, ""); code != http.StatusAccepted {
			t.Errorf("offered mode %s refused: %d %v", mode, code, body)
		}
	}
	code, body := e.post(t, `{"player_id":"five","skill":1650,"region":"eu","mode":"5v5"}`, "")
	fields, _ := body["fields"].([]any)
	if code != http.StatusBadRequest || len(fields) != 1 || fields[0].(map[string]any)["field"] != "mode" {
		t.Fatalf("a mode the page does not offer: %d %v, want 400 naming mode", code, body)
	}
}

var (
	// regionSelectRE is the region choice of the page; plainOptionRE an
	// option whose value is its text.
	regionSelectRE = regexp.MustCompile(`(?s)<select id="region"[^>]*>(.*?)</select>`)
	plainOptionRE  = regexp.MustCompile(`<option>([^<]*)</option>`)
	// attrInputRE finds the inputs of attributes: the element, its name,
	// its kind, and the rest of its tag.
	attrInputRE = regexp.MustCompile(`<(input|select) id="attr-[^"]*"([^>]*)data-attr="([^"]*)" data-kind="([^"]*)"([^>]*)>`)
)

// TestPageOffersRegionsAndAsksForAttributes: the page offers the regions
// this frontend serves (not a fixed list) and has an input for every
// attribute the rule set declares, of its kind, a required one marked
// required, so that a rule set with a required attribute leaves the page
// usable: a ticket with what the page asks for is taken.
func TestPageOffersRegionsAndAsksForAttributes(t *testing.T) {
	t.Parallel()
	e := start(t, options{regions: events.Regions{"us", "oceania"}, rules: fixedRules(t, `{"attributes":{`+
		`"platform":{"kind":"string","values":["pc","console"],"required":true},"build":{"kind":"string"},`+
		`"maps":{"kind":"set","values":["dust","nuke"]},"level":{"kind":"number","min":1,"max":100,"required":true},"newbie":{"kind":"tag"}},`+
		`"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"5m"}]}`)})
	page := getPage(t, e)
	var regions []string
	if m := regionSelectRE.FindStringSubmatch(page); m != nil {
		for _, o := range plainOptionRE.FindAllStringSubmatch(m[1], -1) {
			regions = append(regions, o[1])
		}
	}
	if !slices.Equal(regions, []string{"us", "oceania"}) {
		t.Fatalf("the page offers the regions %q, want the frontend's [us oceania]", regions)
	}
	var inputs []string
	for _, m := range attrInputRE.FindAllStringSubmatch(page, -1) {
		in := m[1] + ":" + m[3] + ":" + m[4]
		if strings.Contains(m[2]+m[5], " required") {
			in += ":required"
		}
		inputs = append(inputs, in)
	}
	want := []string{"input:build:string", "input:level:number:required", "input:maps:set", "input:newbie:tag", "select:platform:string:required"}
	if !slices.Equal(inputs, want) {
		t.Fatalf("the page's attribute inputs %q, want %q", inputs, want)
	}
	// What the page sends (attributes()) when a player fills in the
	// required ones and picks a map.
	body := `{"player_id":"p","skill":1650,"region":"oceania","mode":"1v1","attributes":{"strings":{"platform":"pc"},"numbers":{"level":3},"sets":{"maps":["dust"]}}}`
	if code, b := e.post(t, body, ""); code != http.StatusAccepted {
		t.Fatalf("the page's ticket: %d %v", code, b)
	}
}
