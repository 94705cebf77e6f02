package modes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWidening(t *testing.T) {
	t.Parallel()
	w := Widening{Initial: 100, PerSecond: 25, Max: 300}
	for _, tt := range []struct {
		waited time.Duration
		want   int
	}{{0, 100}, {2 * time.Second, 150}, {8 * time.Second, 300}, {time.Hour, 300}, {-time.Second, 100}} {
		if got := w.At(tt.waited); got != tt.want {
			t.Errorf("At(%s) = %d, want %d", tt.waited, got, tt.want)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "m.json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	set, err := Load(write(`[{"name":"3v3","teams":2,"team_size":3,"max_wait":"2m","skill_window":{"initial":50,"per_second":10,"max":500}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if m := set["3v3"]; m.Players() != 6 || m.Skill.Max != 500 || m.LatencyMS != DefaultLatency || time.Duration(m.MaxWait) != 2*time.Minute {
		t.Fatalf("%+v", m)
	}
	for body, want := range map[string]string{
		`[{"name":"x","teams":1,"team_size":1,"max_wait":"1m"}]`:                                                      "not a match",
		`[{"name":"x","teams":2,"team_size":1}]`:                                                                      "max_wait",
		`[{"name":"x","teams":2,"team_size":1,"max_wait":"1m","skill_window":{"initial":5,"max":1}}]`:                 "skill_window",
		`[{"name":"x","teams":2,"team_size":1,"max_wait":"1m","colour":"red"}]`:                                       "colour",
		`[{"name":"x","teams":2,"team_size":1,"max_wait":"1m"},{"name":"x","teams":2,"team_size":1,"max_wait":"1m"}]`: "twice",
	} {
		if _, err := Load(write(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", body, err, want)
		}
	}
}
