package events

import "testing"

func TestTiersFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		skill int
		want  string
		ok    bool
	}{
		{-1, "", false}, {0, "bronze", true}, {1199, "bronze", true}, {1200, "silver", true},
		{1599, "silver", true}, {1600, "gold", true}, {1999, "gold", true}, {2000, "platinum", true},
		{MaxSkill, "platinum", true},
	}
	for _, tt := range tests {
		got, ok := DefaultTiers.For(tt.skill)
		if got != tt.want || ok != tt.ok {
			t.Errorf("For(%d) = %q %v, want %q %v", tt.skill, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseTiers(t *testing.T) {
	t.Parallel()
	ts, err := ParseTiers(DefaultTiers.String())
	if err != nil || ts.String() != DefaultTiers.String() {
		t.Fatalf("round trip: %v %v", ts, err)
	}
	for _, bad := range []string{"", "gold", "a:1,b:1", "a:2,b:1", "a:0,a:5", "a.b:0", "a:x"} {
		if _, err := ParseTiers(bad); err == nil {
			t.Errorf("ParseTiers(%q) = nil error", bad)
		}
	}
}
