package api

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// The find-a-match page is a template rendered for each request from the
// rule set and regions of the ticket service (Tickets.RuleSet, Regions):
// the lists that validate a ticket are the lists the page offers, so the
// page can never offer a mode or region this frontend refuses nor hide
// one it takes, it asks for every attribute the rule set declares (a
// required one cannot be left out), and it follows a reload of the rule
// set as the validation does. It queues, follows and cancels tickets
// with the TypeScript client (clients/ts), whose build writes the bundle
// page/quickmatch.js (committed, so go build needs no npm); the page
// carries it inline, so it works from the one route the page has.

//go:embed page/index.html page/quickmatch.js
var pageFS embed.FS

// pageTemplate is parsed once: a page that does not parse fails New.
// Its function client gives the TypeScript client's bundle: an esbuild
// IIFE (global quickmatch) built for browsers, which escapes "</script"
// in strings, so it sits inside a script element as it is
// (TestPageCarriesTheClient checks).
func pageTemplate() (*template.Template, error) {
	js, err := pageFS.ReadFile("page/quickmatch.js")
	if err != nil {
		return nil, fmt.Errorf("read the client's bundle: %w", err)
	}
	client := func() template.JS { return template.JS(js) } // our own build, checked against its sources by make test
	tmpl, err := template.New("index.html").Funcs(template.FuncMap{"client": client}).ParseFS(pageFS, "page/index.html")
	if err != nil {
		return nil, fmt.Errorf("parse the page: %w", err)
	}
	return tmpl, nil
}

// pageData is what the page template is given.
type pageData struct {
	// Modes the page offers, in the rule set's order (never empty: a rule
	// set has modes).
	Modes []string
	// DefaultMode is preselected when offered: the mode a ticket that
	// names none is given.
	DefaultMode string
	// Regions the page offers, the first preselected.
	Regions []string
	// Attributes the page asks for, by name.
	Attributes []pageAttribute
}

// pageAttribute is one declared attribute, as the page asks for it: a
// string with allowed values as a choice, a set as a comma-separated
// list, a number with its bounds, a tag as a checkbox.
type pageAttribute struct {
	Name     string
	Kind     string
	Values   []string
	Required bool
	Min, Max *float64
	// Hint tells what a set takes.
	Hint string
}

// newPageData is the page for rule set s and regions.
func newPageData(s *rules.Set, regions events.Regions) pageData {
	d := pageData{Modes: s.Modes(), DefaultMode: events.DefaultMode, Regions: slices.Clone(regions)}
	for name, a := range s.Attributes() {
		pa := pageAttribute{Name: name, Kind: a.Kind, Values: a.Values, Required: a.Required, Min: a.Min, Max: a.Max}
		if a.Kind == rules.KindSet {
			pa.Hint = "comma-separated"
			if len(a.Values) > 0 {
				pa.Hint += ": " + strings.Join(a.Values, ", ")
			}
		}
		d.Attributes = append(d.Attributes, pa)
	}
	slices.SortFunc(d.Attributes, func(a, b pageAttribute) int { return strings.Compare(a.Name, b.Name) })
	return d
}

// renderPage renders the find-a-match page.
func renderPage(tmpl *template.Template, d pageData) ([]byte, error) {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("render the page: %w", err)
	}
	return b.Bytes(), nil
}

// servePage answers with the page for the rule set in force. Rendering a
// page this small costs microseconds, less than keeping a copy per rule
// set right.
func servePage(tmpl *template.Template, data func() pageData) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		body, err := renderPage(tmpl, data())
		if err != nil {
			http.Error(w, "page unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(body) // the client may be gone; nothing to do
	}
}
