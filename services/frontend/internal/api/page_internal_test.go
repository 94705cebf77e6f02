package api

import (
	"strings"
	"testing"
)

// With no list of modes the frontend takes any mode: the page offers no
// list of its own but a text field holding the default mode.
func TestPageWithoutModesAsksForAnyMode(t *testing.T) {
	t.Parallel()
	b, err := renderPage(nil)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if strings.Contains(page, "<option value=") || strings.Contains(page, `<select id="mode"`) {
		t.Fatalf("a page for any mode offers a list:\n%s", page)
	}
	if !strings.Contains(page, `<input id="mode" name="mode" value="1v1" required>`) {
		t.Fatalf("no mode field holding 1v1:\n%s", page)
	}
}

// A mode is written into the page as text, whatever it holds.
func TestPageEscapesModes(t *testing.T) {
	t.Parallel()
	b, err := renderPage([]string{`a"><script>x</script>`})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "<script>x") {
		t.Fatalf("mode written unescaped:\n%s", b)
	}
}
