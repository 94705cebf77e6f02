package stack_test

import (
	"testing"

	"github.com/quickmatch-dev/quickmatch/dev/stack"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestAPIRequestsCountsFoundGets: every JetStream API request is counted,
// leader reads that find their key included, which the server's own API
// total leaves out (it counted only the 3 reads that found nothing of
// these 8, and so `make perf` showed the matchers' reads as none).
func TestAPIRequestsCountsFoundGets(t *testing.T) {
	t.Parallel()
	s := testkit.RunServer(t)
	js := testkit.JetStream(t, testkit.Connect(t, s))
	ctx := t.Context()
	if err := events.Provision(ctx, js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	kv, err := events.BindLeaderGets(ctx, js, events.Subjects{}.PlayersBucket())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "ann", []byte("x")); err != nil {
		t.Fatal(err)
	}
	before, err := stack.APIRequests(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"ann", "ann", "ann", "ann", "ann", "bob", "bob", "bob"} {
		_, _ = kv.Get(ctx, key) // found five times, then not found
	}
	after, err := stack.APIRequests(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := after - before; got != 8 {
		t.Fatalf("%d API requests counted, want 8", got)
	}
}
