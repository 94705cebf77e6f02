package api

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// The find-a-match page is a template rendered for each request from the
// modes of the ticket service (Tickets.Modes): the list that validates a
// ticket's mode is the list the page offers, so the page can never offer
// a mode this frontend refuses nor hide one it takes, and it follows a
// reload of the rule set as the validation does.

//go:embed page/index.html
var pageFS embed.FS

// pageTemplate is parsed once: a page that does not parse fails New.
func pageTemplate() (*template.Template, error) {
	tmpl, err := template.ParseFS(pageFS, "page/index.html")
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
}

// renderPage renders the find-a-match page offering modes.
func renderPage(tmpl *template.Template, modes []string) ([]byte, error) {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, pageData{Modes: modes, DefaultMode: events.DefaultMode}); err != nil {
		return nil, fmt.Errorf("render the page: %w", err)
	}
	return b.Bytes(), nil
}

// servePage answers with the page for the modes in force. Rendering a
// page this small costs microseconds, less than keeping a copy per rule
// set right.
func servePage(tmpl *template.Template, modes func() []string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		body, err := renderPage(tmpl, modes())
		if err != nil {
			http.Error(w, "page unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(body) // the client may be gone; nothing to do
	}
}
