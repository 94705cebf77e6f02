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
