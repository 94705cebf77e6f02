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
		{"eu.silver", "", at(10.5)},          // released: not a takeover
		{"eu.silver", "matcher-3", at(16.5)}, // just after the heal
		{"us.platinum", "matcher-1", at(6)},
		{"us.platinum", "matcher-3", at(19)}, // after the heal: another fault's
		{"us.silver", "matcher-1", at(5)},
		{"us.silver", "matcher-2", at(50)}, // too long after the heal to count
	}
	got := takeovers(parts, changes)
	want := map[string]Takeover{
		"asia.gold":   {From: "matcher-1"},
		"eu.gold":     {From: "matcher-1", To: "matcher-2", Seconds: 3.5},
		"eu.silver":   {From: "matcher-1", To: "matcher-3", Seconds: 6.5, AfterHeal: true},
		"us.platinum": {From: "matcher-1"},
		"us.silver":   {From: "matcher-1"},
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

func TestTakeoverStatsCountWhatMissedTheBound(t *testing.T) {
	ts := []Takeover{
		{Kind: "cut_nats", To: "m2", Seconds: 3, CutSeconds: 8},
		{Kind: "cut_nats", To: "m2", Seconds: 16, CutSeconds: 20}, // later than 15 s
		{Kind: "cut_nats", CutSeconds: 20},                        // never, though the cut outlasted 15 s
		{Kind: "cut_nats", CutSeconds: 5},                         // a cut too short to move it
		{Kind: "cut_asymmetric", CutSeconds: 20},                  // no bound: its owner may reach a majority
	}
	got := summarize(ts)
	if len(got) != 2 {
		t.Fatalf("got %+v, want the two kinds cut", got)
	}
	nats, asym := got[0], got[1]
	if nats.Kind != "cut_nats" || nats.Shards != 4 || nats.Moved != 2 || nats.OverBound != 2 || nats.MaxSeconds != 16 || nats.BoundSeconds != 15 {
		t.Errorf("node cuts: %+v", nats)
	}
	if asym.Kind != "cut_asymmetric" || asym.OverBound != 0 || asym.Moved != 0 {
		t.Errorf("asymmetric split: %+v", asym)
	}
}
