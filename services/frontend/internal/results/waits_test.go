package results

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// A ticket's wait is its mode's max_wait in the rule set in force, plus
// the margin: it follows a reload, and a mode the rule set dropped waits
// the longest any mode may.
func TestModeWaits(t *testing.T) {
	t.Parallel()
	file := func(wait string) []byte {
		return []byte(`{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"` + wait + `"}]}`)
	}
	path := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(path, file("2m"), 0o600); err != nil {
		t.Fatal(err)
	}
	cur, err := rules.Open(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	waits := ModeWaits(cur, 10*time.Second)
	if got := waits("1v1"); got != 2*time.Minute+10*time.Second {
		t.Fatalf("1v1 waits %s, want 2m10s", got)
	}
	if got := waits("5v5"); got != events.TicketMaxAge+10*time.Second {
		t.Fatalf("a mode not in the rule set waits %s, want %s", got, events.TicketMaxAge+10*time.Second)
	}
	if err := os.WriteFile(path, file("30s"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !cur.Reload() {
		t.Fatal("the changed file was not taken")
	}
	if got := waits("1v1"); got != 40*time.Second {
		t.Fatalf("1v1 after the reload waits %s, want 40s", got)
	}
}
