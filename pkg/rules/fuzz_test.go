package rules

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// marshalSet writes s as a rule set file.
func marshalSet(t *testing.T, s *Set) []byte {
	t.Helper()
	f := file{Attributes: s.attributes}
	for _, name := range s.order {
		f.Modes = append(f.Modes, *s.modes[name])
	}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FuzzParse: a rule set file is an operator's input. Parse never panics;
// a set it accepts reads back the same once written, and its rules can
// judge tickets without attributes, which fit each other.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(examplesDir, "*.json"))
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(ruleSet(testAttrs, `,"rules":[{"kind":"equal","attribute":"newbie","drop_after":"1s"},{"kind":"distance","attribute":"level","limit":{}}]`)))
	f.Add([]byte(ruleSet("", `,"match_function":{"service":"mf"},"balance":"none","backfill":true`)))
	f.Add([]byte(`{"modes":[{"name":"m","teams":1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		written := marshalSet(t, s)
		again, err := Parse(written)
		if err != nil {
			t.Fatalf("Parse of its own output %s: %v", written, err)
		}
		if w2 := marshalSet(t, again); !bytes.Equal(written, w2) {
			t.Fatalf("written twice differs:\n%s\n%s", written, w2)
		}
		for _, name := range s.Modes() {
			m, ok := s.Mode(name)
			if !ok {
				t.Fatalf("Modes() lists %q, Mode does not find it", name)
			}
			if v := m.Compile(nil); !m.Fits(v, v, 0, time.Hour) {
				t.Fatalf("mode %q: two tickets without attributes do not fit", name)
			}
			_ = s.Check(&events.Ticket{Mode: name, PlayerID: "p"}, events.Regions{"eu"})
		}
	})
}
