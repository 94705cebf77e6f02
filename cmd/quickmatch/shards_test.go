package main

import (
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestDrainsOnlyWhatTheDeploymentServes: on a deployment serving eu-west
// and us-east, a drain of eu.gold (the CLI's own default regions) is
// refused and drains nothing, where it said it had drained it, and
// eu-west.gold (refused before, as not a default) is drained. A drain
// left on a shard no longer served may be resumed; a resume of a shard
// neither served nor drained is refused. A cancel's notices go to the
// deployment's regions.
func TestDrainsOnlyWhatTheDeploymentServes(t *testing.T) {
	t.Parallel()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	subj := events.Subjects{}
	topo := events.Topology{Subjects: subj, Regions: events.Regions{"eu-west", "us-east"}}
	if err := events.Provision(t.Context(), js, topo); err != nil {
		t.Fatal(err)
	}
	out := &strings.Builder{}
	s := &session{js: js, subj: subj, out: out, close: func() {}}
	cmd := func(make func(*flag.FlagSet) runFunc, args ...string) error {
		fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
		run := make(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return run(t.Context(), s, fs.Args())
	}
	if err := cmd(drainCmd, "-reason", "maintenance", "eu.gold"); !errors.Is(err, errNotServed) {
		t.Fatalf("drain of eu.gold: %v, want it refused as not served", err)
	}
	if err := cmd(drainCmd, "-reason", "maintenance", "eu-west.gold"); err != nil {
		t.Fatalf("drain of eu-west.gold: %v", err)
	}
	d, err := events.NewDrains(t.Context(), js, subj)
	if err != nil {
		t.Fatal(err)
	}
	all, err := d.List(t.Context())
	if err != nil || len(all) != 1 || all[events.Shard{Region: "eu-west", Tier: "gold"}].Reason != "maintenance" {
		t.Fatalf("drains %+v %v, want eu-west.gold's alone", all, err)
	}
	if err := cmd(resumeCmd, "eu.gold"); !errors.Is(err, errNotServed) {
		t.Fatalf("resume of eu.gold, neither served nor drained: %v", err)
	}
	if _, err := d.Drain(t.Context(), events.Shard{Region: "eu", Tier: "gold"}, "a region since removed", "ops"); err != nil {
		t.Fatal(err)
	}
	if err := cmd(resumeCmd, "eu.gold"); err != nil {
		t.Fatalf("resume of a drain left on a shard no longer served: %v", err)
	}
	if regions, err := s.servedRegions(t.Context()); err != nil || !slices.Equal(regions, events.Regions{"eu-west", "us-east"}) {
		t.Fatalf("served regions %v %v", regions, err)
	}
}
