package rules

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// The README's rule set examples are the files it links to, and they
// parse: a reader who copies one gets what the README says.
func TestReadmeExamplesAreTheFiles(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "## Rule sets")
	if start < 0 {
		t.Fatal("README has no \"## Rule sets\" section")
	}
	section = section[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	re := regexp.MustCompile("(?s)\\((examples/rules/[a-z-]+\\.json)\\)\\):?\\s*```json\n(.*?)\n```")
	found := re.FindAllStringSubmatch(section, -1)
	if len(found) < 3 {
		t.Fatalf("found %d linked examples in the README, want crossplay, ranked-casual and maps", len(found))
	}
	for _, m := range found {
		path, shown := m[1], m[2]
		file, err := os.ReadFile("../../" + path)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal([]byte(shown), &a); err != nil {
			t.Fatalf("README block before %s: %v", path, err)
		}
		if err := json.Unmarshal(file, &b); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("the README shows another rule set than %s", path)
		}
		if _, err := Parse(file); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}
