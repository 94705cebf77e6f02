package main

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
)

// A frontend (re)started while NATS is cut off from it, after it found
// the topology, waits for NATS and starts with the drains in force; it
// used to exit at the first bucket it could not bind or read (the chaos
// run's unprovoked exit: a frontend restarted during a partition, "read
// the drains in force: ... JetStream system temporarily unavailable").
// The cut holds until bind says it is retrying, so the first attempt
// fails (here at the capacity bucket, the first one bound) and the test
// shows the retry, not a cut short enough to be waited out.
func TestBindWaitsOutACut(t *testing.T) {
	t.Parallel()
	srv := testkit.RunServer(t)
	subj := events.Subjects{}
	admin := testkit.JetStream(t, testkit.Connect(t, srv))
	if err := events.Provision(t.Context(), admin, events.Topology{Subjects: subj}); err != nil {
		t.Fatal(err)
	}
	drains, err := events.NewDrains(t.Context(), admin, subj)
	if err != nil {
		t.Fatal(err)
	}
	eu := events.Shard{Region: "eu", Tier: "gold"}
	if _, err := drains.Drain(t.Context(), eu, "eu game servers upgrade", "alice"); err != nil {
		t.Fatal(err)
	}

	link := testkit.NewLink(t, srv.Addr().String())
	nc := testkit.ConnectURL(t, link.URL())
	watch := testkit.WatchLog(service.RetryNote)
	env := &service.Env{Log: watch.Logger(), NC: nc, JS: testkit.JetStream(t, nc), Subjects: subj, Registry: prometheus.NewRegistry()}
	cfg, err := parseConfig([]string{"-auth-insecure"})
	if err != nil {
		t.Fatal(err)
	}
	tracker := results.New(nc, subj, env.Log, env.Registry, nil, nil)

	link.CutUntil(t, watch.Seen())
	// Ended after 30 s if no retry is logged (no heal then); a cancel,
	// not a deadline, which the bind's calls would take as their own
	// in place of JetStream's 5 s.
	ctx, cancel := context.WithCancel(t.Context())
	defer time.AfterFunc(30*time.Second, cancel).Stop()
	p, err := bind(ctx, env, &cfg, tracker)
	if err != nil {
		t.Fatalf("bind ended at a cut NATS heals from: %v", err)
	}
	if err := p.drains.CheckShard(eu); err == nil {
		t.Fatal("bound without the drains in force: eu/gold admitted")
	}
	if cfg.tickets.Drains == nil || p.tickets == nil || p.capacity == nil || p.queues == nil {
		t.Fatalf("bind left a part unbound: %+v", p)
	}
}
