package api

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// The find-a-match page is a template rendered once, in New, from the
// modes of the ticket service (Tickets.Modes): the list that validates a
// ticket's mode is the list the page offers, so the page can never offer
// a mode this frontend refuses nor hide one it takes.

//go:embed page/index.html
var pageFS embed.FS

// pageData is what the page template is given.
type pageData struct {
	// Modes the page offers, in the frontend's order. Empty: the frontend
	// takes any mode, and the page asks for one in a text field.
	Modes []string
	// DefaultMode is preselected when offered (and fills the text field):
	// the mode a ticket that names none is given.
	DefaultMode string
}

// renderPage renders the find-a-match page for modes (nil: any mode).
//
// With no list the page shows a text field rather than a list of its own:
// any list chosen here would be a second list of modes, which could offer
// a mode the matchers do not know or hide one they do; the frontend takes
// any mode then, and the field says so by taking any.
func renderPage(modes []string) ([]byte, error) {
	tmpl, err := template.ParseFS(pageFS, "page/index.html")
	if err != nil {
		return nil, fmt.Errorf("parse the page: %w", err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, pageData{Modes: modes, DefaultMode: events.DefaultMode}); err != nil {
		return nil, fmt.Errorf("render the page: %w", err)
	}
	return b.Bytes(), nil
}

// servePage answers with the rendered page.
func servePage(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(body) // the client may be gone; nothing to do
	}
}
