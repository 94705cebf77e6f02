package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestStaleNotFromACutReplica: alice's ticket Z is replaced by A while
// n3, a replica of the players bucket, is cut off. A reader attached to
// n3 must never be told that A is stale, superseded by Z: that would
// cancel her live ticket for the one it replaced. Before, StaleBatch and
// Stale read with direct gets, which n3 answered from what it had (R4 F1).
// Now the leader answers, or the read fails.
func TestStaleNotFromACutReplica(t *testing.T) {
	t.Parallel()
	c := testkit.RunLinkedCluster(t)
	nc1 := testkit.Connect(t, c.Servers[0])
	js1 := testkit.JetStream(t, nc1)
	ctx := t.Context()
	subj := events.Subjects{Prefix: "lag"}
	testkit.Eventually(t, 30*time.Second, func() bool {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return events.Provision(pctx, js1, events.Topology{Subjects: subj, Replicas: 3}) == nil
	}, "provision")
	for _, s := range []string{"KV_" + subj.PlayersBucket(), "KV_" + subj.ClaimsBucket()} {
		testkit.PlaceLeader(t, js1, nc1, s, 2, false)
	}
	players1 := bindPlayers(t, js1, subj)
	tell := func(context.Context, events.LiveTicket, string) error { return nil }
	t0 := time.Now()
	if _, err := players1.Take(ctx, events.LiveTicket{TicketID: "Z", Players: []string{"alice"}, Region: "eu", Tier: "gold", Mode: "1v1", CreatedAt: t0}, tell); err != nil {
		t.Fatal(err)
	}
	nc3 := testkit.Connect(t, c.Servers[2])
	players3 := bindPlayers(t, testkit.JetStream(t, nc3), subj)
	testkit.Eventually(t, 10*time.Second, func() bool {
		st, errs := players3.StaleBatch(ctx, []map[string][]string{{"A": {"alice"}}})
		return errs[0] == nil && st[0]["A"] == "Z"
	}, "n3 never saw Z")
	// n3 holds Z as a replica: cut it off, and replace Z by A.
	c.Cut(2)
	if taken, err := players1.Take(ctx, events.LiveTicket{TicketID: "A", Players: []string{"alice"}, Region: "eu", Tier: "gold", Mode: "1v1", CreatedAt: t0.Add(time.Second)}, tell); err != nil || !taken.Live {
		t.Fatalf("take A: %+v %v", taken, err)
	}
	for i := range 20 {
		rctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		st, errs := players3.StaleBatch(rctx, []map[string][]string{{"A": {"alice"}}})
		st1, err1 := players3.Stale(rctx, map[string][]string{"A": {"alice"}})
		cancel()
		if errs[0] == nil && st[0]["A"] != "" {
			t.Errorf("try %d: StaleBatch on the cut replica: A stale by %q", i, st[0]["A"])
		}
		if err1 == nil && st1["A"] != "" {
			t.Errorf("try %d: Stale on the cut replica: A stale by %q", i, st1["A"])
		}
	}
}

func bindPlayers(t *testing.T, js jetstream.JetStream, subj events.Subjects) *events.Players {
	t.Helper()
	claims, err := events.NewClaims(t.Context(), js, subj)
	if err != nil {
		t.Fatal(err)
	}
	players, err := events.NewPlayers(t.Context(), js, subj, claims)
	if err != nil {
		t.Fatal(err)
	}
	return players
}
