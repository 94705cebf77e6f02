package api

import (
	"strings"
	"testing"
)

// A mode is written into the page as text, whatever it holds.
func TestPageEscapesModes(t *testing.T) {
	t.Parallel()
	tmpl, err := pageTemplate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := renderPage(tmpl, []string{`a"><script>x</script>`})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "<script>x") {
		t.Fatalf("mode written unescaped:\n%s", b)
	}
}
