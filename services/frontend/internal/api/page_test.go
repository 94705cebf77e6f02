package api_test

import (
	"io"
	"net/http"
	"regexp"
	"slices"
	"testing"
)

// optionRE finds the mode choices of the find-a-match page.
var optionRE = regexp.MustCompile(`<option value="([^"]*)"( selected)?>`)

// TestPageOffersTheModesTheFrontendTakes: the page lists exactly the
// modes of the rule set in force (1v1 and 2v2 here, not the default rule
// set's 5v5 or ffa), the default one chosen; each mode it offers is
// taken, and one it does not offer is refused with the field named.
func TestPageOffersTheModesTheFrontendTakes(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	res, err := http.Get(e.http.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("page: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var offered, selected []string
	for _, m := range optionRE.FindAllStringSubmatch(string(b), -1) {
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
