package matcher

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// Every wait falls in the bucket whose range holds it, and the buckets
// are at most an eighth of their waits wide: the median's error.
func TestWaitBucketsHoldTheirWaits(t *testing.T) {
	t.Parallel()
	for ms := int64(0); ms < 1<<23; ms += 1 + ms/7 {
		i := waitBucket(ms)
		lo, width := bucketRange(i)
		if ms < lo || ms >= lo+width {
			t.Fatalf("wait %d ms in bucket %d = [%d, %d)", ms, i, lo, lo+width)
		}
		if ms >= 8 && width*8 > lo {
			t.Fatalf("bucket %d = [%d, %d) wider than an eighth", i, lo, lo+width)
		}
	}
	if i := waitBucket(int64(events.TicketMaxAge / time.Millisecond)); i >= waitBuckets-1 {
		t.Fatalf("a ticket's longest wait in bucket %d, the last (%d) is for longer", i, waitBuckets-1)
	}
	if i := waitBucket(int64(10 * events.TicketMaxAge / time.Millisecond)); i != waitBuckets-1 {
		t.Fatalf("a wait past every ticket's life in bucket %d, want the last", i)
	}
}

func TestExpectedWait(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	type matchedAt struct {
		ago  time.Duration // before now
		wait time.Duration
	}
	s := time.Second
	for _, c := range []struct {
		name    string
		matched []matchedAt
		oldest  time.Duration
		// want within the median's error (an eighth either way);
		// 0 is unknown.
		want        time.Duration
		wantMatched int
	}{
		{name: "nothing at all"},
		{name: "one match", matched: []matchedAt{{5 * s, 20 * s}, {5 * s, 20 * s}}, want: 20 * s, wantMatched: 2},
		{name: "the median, not the mean", matched: []matchedAt{{s, 2 * s}, {s, 3 * s}, {s, 4 * s}, {s, 5 * s}, {s, 600 * s}},
			want: 4 * s, wantMatched: 5},
		{name: "even count: the lower middle", matched: []matchedAt{{s, 10 * s}, {s, 10 * s}, {s, 40 * s}, {s, 40 * s}},
			want: 10 * s, wantMatched: 4},
		{name: "matches older than a minute are forgotten", matched: []matchedAt{{90 * s, 300 * s}, {90 * s, 300 * s}, {10 * s, 6 * s}, {10 * s, 6 * s}},
			want: 6 * s, wantMatched: 2},
		{name: "recent matches win over the oldest waiting", matched: []matchedAt{{s, 8 * s}, {s, 8 * s}}, oldest: 50 * s,
			want: 8 * s, wantMatched: 2},
		{name: "no recent match: the oldest wait is a lower bound", matched: []matchedAt{{2 * time.Minute, 3 * s}}, oldest: 45 * s,
			want: 45 * s},
		{name: "instant matches are known, not unknown", matched: []matchedAt{{s, 0}, {s, 0}}, want: time.Millisecond, wantMatched: 2},
		{name: "a ticket that just arrived", oldest: 300 * time.Microsecond, want: time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			var h *waitHistogram
			if c.matched != nil {
				h = &waitHistogram{}
				// Oldest first, as a runner counts them.
				for _, m := range c.matched {
					h.add(now.Add(-m.ago), m.wait)
				}
			}
			ms, matched := expectedWait(h, c.oldest, now)
			got := time.Duration(ms) * time.Millisecond
			if matched != c.wantMatched || got < c.want-c.want/8 || got > c.want+c.want/8 || (got == 0) != (c.want == 0) {
				t.Fatalf("expectedWait = %s over %d matched, want %s over %d", got, matched, c.want, c.wantMatched)
			}
		})
	}
}

// A mode's figures are written when they change, or again before the
// bucket's TTL would drop them; a mode with nothing to say is not written,
// but one that falls silent is written once so its old figures go.
func TestQueueFiguresWorthWriting(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	fig := func(waiting, matched int, wait int64, at time.Duration) events.QueueStats {
		return events.QueueStats{Waiting: waiting, Matched: matched, ExpectedWaitMS: wait, UpdatedAt: t0.Add(at)}
	}
	for _, c := range []struct {
		name       string
		last       events.QueueStats
		written    bool
		next       events.QueueStats
		worthWrite bool
	}{
		{"first figures", events.QueueStats{}, false, fig(3, 0, 5000, 0), true},
		{"nothing to say, never said", events.QueueStats{}, false, fig(0, 0, 0, 0), false},
		{"unchanged", fig(3, 10, 5000, 0), true, fig(3, 10, 5000, 2*time.Second), false},
		{"waiting changed", fig(3, 10, 5000, 0), true, fig(4, 10, 5000, 2*time.Second), true},
		{"estimate changed", fig(3, 10, 5000, 0), true, fig(3, 10, 5200, 2*time.Second), true},
		{"unchanged, getting old", fig(3, 10, 5000, 0), true, fig(3, 10, 5000, queueRefresh), true},
		{"fell silent", fig(0, 2, 5000, 0), true, fig(0, 0, 0, 2*time.Second), true},
		{"silent, said so", fig(0, 0, 0, 0), true, fig(0, 0, 0, queueRefresh), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := worthWriting(c.last, c.written, c.next); got != c.worthWrite {
				t.Fatalf("worthWriting = %v, want %v", got, c.worthWrite)
			}
		})
	}
}

// A runner writes its shard's figures to the queue bucket: for the mode
// whose tickets were matched, their median wait; for the mode whose ticket
// still waits, that ticket's wait so far; nothing for modes nobody plays
// nor for shards without tickets.
func TestRunnerWritesQueueFigures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Skill windows that stay inside gold: with the default ones, tickets
	// 20 s old are offered to silver and platinum, and a sweep between
	// alice's take and bob's leaves a copy there a moment, whose figure
	// the runner writes (CI saw eu.silver.1v1 written so, once).
	narrow := `"skill_window":{"initial":100,"per_second":0,"max":100}`
	e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"5m",`+narrow+`},`+
		`{"name":"2v2","teams":2,"team_size":2,"max_wait":"5m",`+narrow+`},`+
		`{"name":"5v5","teams":2,"team_size":5,"max_wait":"5m",`+narrow+`},`+
		`{"name":"ffa","teams":8,"team_size":1,"max_wait":"5m",`+narrow+`}]`)})
	kv, err := e.js.KeyValue(t.Context(), e.subj.QueueBucket())
	if err != nil {
		t.Fatal(err)
	}
	at := func(ago time.Duration) string { return time.Now().UTC().Add(-ago).Format(time.RFC3339Nano) }
	for _, p := range []string{"alice", "bob"} {
		e.pub(t, e.subj.Ticket("eu", "gold"), fmt.Sprintf(`{"player_id":%q,"skill":1800,"mode":"1v1","created_at":%q}`, p, at(20*time.Second)))
	}
	e.pub(t, e.subj.Ticket("eu", "gold"), fmt.Sprintf(`{"player_id":"carol","skill":1800,"mode":"2v2","created_at":%q}`, at(40*time.Second)))

	read := func(key string) (events.QueueStats, bool) {
		entry, err := kv.Get(t.Context(), key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return events.QueueStats{}, false
		}
		if err != nil {
			t.Fatal(err)
		}
		q, err := events.DecodeQueueStats(entry.Value())
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return q, true
	}
	var duo, quad events.QueueStats
	testkit.Eventually(t, 10*time.Second, func() bool {
		var ok1, ok2 bool
		duo, ok1 = read("eu.gold.1v1")
		quad, ok2 = read("eu.gold.2v2")
		return ok1 && ok2 && duo.Matched == 2 && quad.Waiting == 1
	}, "figures not written: 1v1 %+v, 2v2 %+v", duo, quad)
	if d, ok := duo.ExpectedWait(); !ok || d < 18*time.Second || d > 23*time.Second || duo.Waiting != 0 || duo.Region != "eu" || duo.Tier != "gold" {
		t.Errorf("1v1 figures %+v, want an expected wait near 20 s", duo)
	}
	if d, ok := quad.ExpectedWait(); !ok || d < 40*time.Second || d > 50*time.Second || quad.Matched != 0 {
		t.Errorf("2v2 figures %+v, want carol's wait so far (40 s and more)", quad)
	}
	for _, key := range []string{"eu.gold.5v5", "eu.gold.ffa", "us.gold.1v1", "eu.silver.1v1"} {
		if q, ok := read(key); ok {
			t.Errorf("%s written: %+v", key, q)
		}
	}
}
