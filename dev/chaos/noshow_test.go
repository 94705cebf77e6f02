package chaos

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/loadrecord"
)

// A no-show is traced to its player's failed POST under way when it was
// created, not to another of the player's (the load tool reuses players,
// one POST at a time), nor another player's at the same moment.
func TestANoShowIsTracedToItsPlayersFailedPost(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 7, 7, 41, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	failed := []FailedPost{
		{PlayerID: "p1", Frontend: "http://f1", SentAt: at(0), EndedAt: at(100), Failed: "post_503"},
		{PlayerID: "p2", Frontend: "http://f2", SentAt: at(900), EndedAt: at(9000), Failed: "post_error"},
		{PlayerID: "p1", Frontend: "http://f2", SentAt: at(1000), EndedAt: at(8000), Failed: "post_error"},
	}
	tests := []struct {
		name     string
		player   string
		created  time.Time
		frontend string
		failed   string
	}{
		{"answered nothing", "p1", at(1200), "http://f2", "post_error"},
		{"answered an error", "p1", at(50), "http://f1", "post_503"},
		{"stamped a moment before the POST's clock", "p1", at(990), "http://f2", "post_error"},
		{"between its player's POSTs", "p1", at(500), "", ""},
		{"no failed POST of its player", "p3", at(1200), "", ""},
	}
	for _, tt := range tests {
		got := traceNoShow("t", tt.player, tt.created, failed)
		if got.Frontend != tt.frontend || got.Failed != tt.failed || !got.CreatedAt.Equal(tt.created) {
			t.Errorf("%s: traced to %+v, want frontend %q failed %q", tt.name, got, tt.frontend, tt.failed)
		}
	}
}

// The record holds both kinds of line; each is read as its own.
func TestReadRecordTellsAckedFromFailedPosts(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "acked.jsonl")
	now := time.Now().UTC()
	var lines []byte
	for _, v := range []any{
		Acked{TicketID: "t1", PlayerID: "p1", Frontend: "http://f1", AcceptedAt: now},
		FailedPost{PlayerID: "p2", Frontend: "http://f2", SentAt: now, EndedAt: now, Failed: "post_error"},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(append(lines, b...), '\n')
	}
	if err := os.WriteFile(path, lines, 0o600); err != nil {
		t.Fatal(err)
	}
	acked, failed, err := loadrecord.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(acked) != 1 || acked[0].TicketID != "t1" || len(failed) != 1 || failed[0].PlayerID != "p2" || failed[0].Failed != "post_error" {
		t.Fatalf("read %+v and %+v, want t1 acked and p2's POST failed", acked, failed)
	}
}
