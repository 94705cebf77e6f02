package drain_test

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/drain"
)

// logs is a log the test reads back.
type logs struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// The watcher follows the bucket: a drain made before it started (from
// New on, before the watch runs) and one made after refuse their shard with the operator's reason; a resume
// admits again; a bad value or key is logged and changes nothing.
func TestWatcherFollowsTheDrainsBucket(t *testing.T) {
	t.Parallel()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{Subjects: subj}); err != nil {
		t.Fatal(err)
	}
	drains, err := events.NewDrains(t.Context(), js, subj)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), subj.DrainsBucket())
	if err != nil {
		t.Fatal(err)
	}
	eu, us, asia := events.Shard{Region: "eu", Tier: "gold"}, events.Shard{Region: "us", Tier: "gold"}, events.Shard{Region: "asia", Tier: "gold"}
	if _, err := drains.Drain(t.Context(), eu, "eu game servers upgrade", "alice"); err != nil { // before the watch starts
		t.Fatal(err)
	}
	log := &logs{}
	w, err := drain.New(t.Context(), js, subj, slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	refuses := func(s events.Shard, reason string) func() bool {
		return func() bool {
			var d *drain.DrainedError
			err := w.CheckShard(s)
			return errors.As(err, &d) && errors.Is(err, drain.ErrDrained) && d.Shard == s && d.Reason == reason && d.RetryAfter > 0
		}
	}
	// New read the drains in force: refused from the first request on,
	// before the watch runs.
	if !refuses(eu, "eu game servers upgrade")() {
		t.Fatalf("a drain made before New, not refused before the watch: %v", w.CheckShard(eu))
	}
	testkit.Run(t, w.Run)
	admits := func(s events.Shard) func() bool { return func() bool { return w.CheckShard(s) == nil } }
	testkit.Eventually(t, 5*time.Second, refuses(eu, "eu game servers upgrade"), "a drain made before the watch, once it runs: %v", w.CheckShard(eu))
	if err := w.CheckShard(events.Shard{Region: "eu", Tier: "silver"}); err != nil {
		t.Fatalf("another tier of the region: %v", err)
	}
	if err := w.CheckShard(us); err != nil {
		t.Fatalf("another region: %v", err)
	}

	if _, err := drains.Drain(t.Context(), us, "incident 42", "bob"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, refuses(us, "incident 42"), "a drain made while watching: %v", w.CheckShard(us))
	if _, err := drains.Resume(t.Context(), eu); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, admits(eu), "resumed, still refused: %v", w.CheckShard(eu))

	// Bad values: on a shard not drained, over a drained one, under a
	// key that is no shard. The watch hands entries over in order, so
	// once a later good drain shows, the bad ones were applied.
	for key, v := range map[string]string{
		"asia.gold": `{"schema_version":1,"reason":"","by":"x","at":"2026-12-02T09:00:00Z"}`,
		"us.gold":   `not json`,
		"eu":        `{"schema_version":1,"reason":"r","by":"x","at":"2026-12-02T09:00:00Z"}`,
	} {
		if _, err := kv.Put(t.Context(), key, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	marker := events.Shard{Region: "eu", Tier: "bronze"}
	if _, err := drains.Drain(t.Context(), marker, "marker", "test"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, refuses(marker, "marker"), "marker drain not seen")
	if err := w.CheckShard(asia); err != nil {
		t.Errorf("a bad value drained a shard: %v", err)
	}
	if !refuses(us, "incident 42")() {
		t.Errorf("a bad value over a drain changed it: %v", w.CheckShard(us))
	}
	if got := log.String(); strings.Count(got, "bad drain ignored") != 2 || !strings.Contains(got, "drain under a bad key ignored") {
		t.Errorf("bad entries not logged:\n%s", got)
	}
}

// A frontend whose NATS does not answer does not start believing nothing
// is drained: New fails (within its LoadTimeout) instead of returning a
// watcher that admits every shard, and the frontend, not ready, tries
// again (its bind).
func TestNewFailsWithoutTheDrains(t *testing.T) {
	t.Parallel()
	s := testkit.RunServer(t)
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), testkit.JetStream(t, testkit.Connect(t, s)), events.Topology{Subjects: subj}); err != nil {
		t.Fatal(err)
	}
	link := testkit.NewLink(t, strings.TrimPrefix(s.ClientURL(), "nats://"))
	js := testkit.JetStream(t, testkit.ConnectURL(t, link.URL(), nats.MaxReconnects(0)))
	link.Cut(testkit.Both)
	w, err := drain.New(t.Context(), js, subj, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatalf("New with NATS silent: a watcher (%v), want an error", w)
	}
}
