package queue

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// The watcher follows the bucket: figures put, changed, deleted; bad
// figures and figures under another key are not shown; figures older than
// the bucket's TTL are not shown either.
func TestWatcherFollowsTheQueueBucket(t *testing.T) {
	t.Parallel()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{Subjects: subj}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), subj.QueueBucket())
	if err != nil {
		t.Fatal(err)
	}
	put := func(key string, v any) {
		t.Helper()
		data, ok := v.([]byte)
		if !ok {
			data, _ = json.Marshal(v)
		}
		if _, err := kv.Put(t.Context(), key, data); err != nil {
			t.Fatal(err)
		}
	}
	fig := func(region, mode string, wait int64) events.QueueStats {
		return events.QueueStats{SchemaVersion: events.SchemaVersion, Region: region, Tier: "gold", Mode: mode,
			Waiting: 2, ExpectedWaitMS: wait, Matched: 8, UpdatedAt: time.Now().UTC()}
	}
	put("eu.gold.1v1", fig("eu", "1v1", 12500)) // before the watch starts
	w, err := New(t.Context(), js, subj, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, w.Run)
	eu := events.Shard{Region: "eu", Tier: "gold"}
	shows := func(s events.Shard, mode string, want time.Duration) func() bool {
		return func() bool { d, ok := w.ExpectedWait(s, mode); return ok == (want > 0) && d == want }
	}
	testkit.Eventually(t, 5*time.Second, shows(eu, "1v1", 12500*time.Millisecond), "initial figures not seen")

	put("eu.gold.1v1", fig("eu", "1v1", 30000))
	testkit.Eventually(t, 5*time.Second, shows(eu, "1v1", 30*time.Second), "changed figures not seen")

	put("eu.gold.2v2", fig("eu", "2v2", 0)) // waiting, nothing to estimate from
	put("eu.gold.ffa", fig("us", "ffa", 9000))
	put("eu.gold.5v5", []byte(`{"schema_version":1,"region":"eu","tier":"gold","mode":"5v5","expected_wait_ms":-5}`))
	put("eu.gold.marker", fig("eu", "marker", 1000)) // the watch has seen everything above once it sees this
	testkit.Eventually(t, 5*time.Second, shows(eu, "marker", time.Second), "marker not seen")
	for _, mode := range []string{"2v2", "ffa", "5v5"} {
		if d, ok := w.ExpectedWait(eu, mode); ok {
			t.Errorf("%s shows %s", mode, d)
		}
	}
	if d, ok := w.ExpectedWait(events.Shard{Region: "us", Tier: "gold"}, "ffa"); ok {
		t.Errorf("figures of us under an eu key show %s", d)
	}

	if err := kv.Delete(t.Context(), "eu.gold.1v1"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, shows(eu, "1v1", 0), "deleted figures still shown")

	// The bucket drops old figures without telling watchers: the watcher
	// stops showing them itself (only ExpectedWait, on this goroutine,
	// reads the clock).
	w.now = func() time.Time { return time.Now().Add(events.QueueStatsTTL + time.Second) }
	if d, ok := w.ExpectedWait(eu, "marker"); ok {
		t.Errorf("figures older than the TTL show %s", d)
	}
}
