package api

import (
	"strings"
	"testing"
)

// A mode, a region and an attribute's name and values are written into
// the page as text, whatever they hold.
func TestPageEscapesModes(t *testing.T) {
	t.Parallel()
	tmpl, err := pageTemplate()
	if err != nil {
		t.Fatal(err)
	}
	bad := `a"><script>x</script>`
	b, err := renderPage(tmpl, pageData{Modes: []string{bad}, Regions: []string{bad}, Attributes: []pageAttribute{
		{Name: bad, Kind: "string", Values: []string{bad}}, {Name: bad, Kind: "set", Hint: bad}}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "<script>x") {
		t.Fatalf("mode written unescaped:\n%s", b)
	}
}

// The page carries the TypeScript client's bundle as it is, inside a
// script element it cannot end early, and uses it.
func TestPageCarriesTheClient(t *testing.T) {
	t.Parallel()
	tmpl, err := pageTemplate()
	if err != nil {
		t.Fatal(err)
	}
	js, err := pageFS.ReadFile("page/quickmatch.js")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), "var quickmatch = (() => {") {
		t.Fatalf("page/quickmatch.js is not the client's IIFE bundle (global quickmatch): %.200s", js)
	}
	for _, bad := range []string{"</script", "<!--"} {
		if strings.Contains(strings.ToLower(string(js)), bad) {
			t.Fatalf("the client's bundle holds %q, which would end or garble its script element", bad)
		}
	}
	b, err := renderPage(tmpl, pageData{Modes: []string{"1v1"}, Regions: []string{"eu"}})
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if !strings.Contains(page, "<script>"+string(js)+"</script>") {
		t.Fatal("the page does not carry the client's bundle verbatim in a script element")
	}
	for _, use := range []string{"new quickmatch.Client(", "client.createTicket(", "client.waitForOutcome(", "client.cancelTicket("} {
		if !strings.Contains(page, use) {
			t.Errorf("the page does not call %s", use)
		}
	}
}
