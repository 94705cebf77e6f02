package matcher

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// A worker (re)started while NATS is cut off from it, after the process
// found the topology, waits for NATS and then takes its shards; it used
// to end at the first bucket it could not bind ("claims bucket: context
// deadline exceeded"), and the process with it. The cut holds until Bind
// says it is retrying, so the test shows the retry.
func TestBindWaitsOutACut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	link := testkit.NewLink(t, e.srv.Addr().String())
	nc := testkit.ConnectURL(t, link.URL())
	watch := testkit.WatchLog(service.RetryNote)
	w, err := New(Config{WorkerID: "late", Sweep: 50 * time.Millisecond}, testkit.JetStream(t, nc), e.subj, watch.Logger(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	link.CutUntil(t, watch.Seen())
	// Ended after 30 s if no retry is logged (no heal then); a cancel,
	// not a deadline, which the bind's calls would take as their own
	// in place of JetStream's 5 s.
	bindCtx, stopBind := context.WithCancel(t.Context())
	defer time.AfterFunc(30*time.Second, stopBind).Stop()
	if err := w.Bind(bindCtx); err != nil {
		t.Fatalf("Bind ended at a cut NATS heals from: %v", err)
	}
	// Bound: Run takes every shard (Run binds no more).
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	want := len(events.Topology{}.Shards())
	testkit.Eventually(t, 30*time.Second, func() bool { return len(e.owners(t)) == want }, "the worker does not hold all %d shards", want)
}
