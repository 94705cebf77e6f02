package chaos

import (
	"testing"
	"time"
)

func TestTakeovers(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	parts := []partition{{kind: "cut_service", what: "matcher-1 from NATS, both ways", start: at(10), end: at(16), workers: []string{"matcher-1"}}}
	changes := []leaseChange{
		{"eu.gold", "matcher-1", at(1)},
		{"eu.gold", "matcher-1", at(9)},  // a renewal before the cut
		{"eu.gold", "matcher-1", at(11)}, // the cut owner's last renewal got through
		{"eu.gold", "matcher-2", at(13.5)},
		{"us.gold", "matcher-2", at(2)}, // not on the cut side
		{"us.gold", "matcher-3", at(12)},
		{"asia.gold", "matcher-1", at(3)}, // never moves
		{"eu.silver", "matcher-1", at(4)},
		{"eu.silver", "", at(10.5)},        // released: not a takeover
		{"eu.silver", "matcher-3", at(17)}, // after the heal
		{"us.silver", "matcher-1", at(5)},
		{"us.silver", "matcher-2", at(50)}, // too long after the heal to count
	}
	got := takeovers(parts, changes)
	want := map[string]Takeover{
		"asia.gold": {From: "matcher-1"},
		"eu.gold":   {From: "matcher-1", To: "matcher-2", Seconds: 3.5},
		"eu.silver": {From: "matcher-1", To: "matcher-3", Seconds: 7, AfterHeal: true},
		"us.silver": {From: "matcher-1"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d takeovers %+v, want %d", len(got), got, len(want))
	}
	for _, g := range got {
		w, ok := want[g.Shard]
		if !ok || g.From != w.From || g.To != w.To || g.Seconds != w.Seconds || g.AfterHeal != w.AfterHeal || g.CutSeconds != 6 {
			t.Errorf("%s: got %+v, want %+v (cut 6 s)", g.Shard, g, w)
		}
	}
}
