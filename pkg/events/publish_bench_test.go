package events

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// provisioned is an embedded JetStream server with the topology.
func provisioned(b *testing.B) (jetstream.JetStream, Subjects, context.Context) {
	b.Helper()
	js := testkit.JetStream(b, testkit.Connect(b, testkit.RunServer(b)))
	ctx := context.Background()
	if err := Provision(ctx, js, Topology{}); err != nil {
		b.Fatal(err)
	}
	return js, Subjects{}, ctx
}

// BenchmarkPublishResults is the publish path of a 1v1 match's two
// results on an embedded JetStream server (file storage, the RESULTS
// stream as provisioned): one synchronous publish after the other, as the
// services did, against Results, which sends both before awaiting the
// acks. ns/op is per match.
func BenchmarkPublishResults(b *testing.B) {
	js, subj, ctx := provisioned(b)
	pub := NewPublisher(js, subj)
	results := func(i int) []Result {
		return []Result{
			{TicketID: fmt.Sprintf("t%da", i), PlayerID: fmt.Sprintf("p%da", i), Status: StatusMatched, MatchID: fmt.Sprintf("m%d", i)},
			{TicketID: fmt.Sprintf("t%db", i), PlayerID: fmt.Sprintf("p%db", i), Status: StatusMatched, MatchID: fmt.Sprintf("m%d", i)},
		}
	}
	b.Run("one-by-one", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			for _, r := range results(i) {
				if err := pub.Result(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("together", func(b *testing.B) {
		b.ReportAllocs()
		i := 1 << 30
		for b.Loop() {
			i++
			if err := pub.Results(ctx, results(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkClaimAll is claiming a 1v1 match's two tickets (the claims
// bucket as provisioned); the claims go out together.
func BenchmarkClaimAll(b *testing.B) {
	js, subj, ctx := provisioned(b)
	c, err := NewClaims(ctx, js, subj)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		lost, err := c.ClaimAll(ctx, []string{fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)}, fmt.Sprintf("match:m%d", i))
		if err != nil || len(lost) != 0 {
			b.Fatal(lost, err)
		}
	}
}

// BenchmarkPlayersTake is what taking a ticket in costs the shard that
// owns it (the players bucket as provisioned): "new" a player with no
// earlier ticket (a read and a create), "again" a player whose earlier
// ticket it supersedes (a read, the own claim's read, the old ticket's
// claim and an update; telling the players is left out), "stale-check"
// the read a 1v1 match's commit adds for its two players.
func BenchmarkPlayersTake(b *testing.B) {
	js, subj, ctx := provisioned(b)
	c, err := NewClaims(ctx, js, subj)
	if err != nil {
		b.Fatal(err)
	}
	p, err := NewPlayers(ctx, js, subj, c)
	if err != nil {
		b.Fatal(err)
	}
	quiet := func(context.Context, LiveTicket, string) error { return nil }
	ticket := func(id, player string) LiveTicket {
		return LiveTicket{TicketID: id, Players: []string{player}, Region: "eu", Tier: "gold", Mode: "1v1"}
	}
	b.Run("new", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if _, err := p.Take(ctx, ticket(fmt.Sprintf("n%d", i), fmt.Sprintf("pn%d", i)), quiet); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("again", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if _, err := p.Take(ctx, ticket(fmt.Sprintf("a%d", i), "same"), quiet); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stale-check", func(b *testing.B) {
		for b.Loop() {
			if _, err := p.Stale(ctx, map[string][]string{"n1": {"pn1"}, "n2": {"pn2"}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecide is the round trip a match's commit adds after its stale
// check (the matches bucket as provisioned): "first" a commit deciding
// its own match (one create), "follow" a decider that finds the match
// decided (a create that fails and a read), as a slow commit or a
// recovering worker does.
func BenchmarkDecide(b *testing.B) {
	js, subj, ctx := provisioned(b)
	d, err := NewDecisions(ctx, js, subj)
	if err != nil {
		b.Fatal(err)
	}
	i := 0 // across runs: with -count, b.Run runs "first" again on the same bucket
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			i++
			if got, _, err := d.Decide(ctx, fmt.Sprintf("m%d", i), DecisionPublished); err != nil || got != DecisionPublished {
				b.Fatal(got, err)
			}
		}
	})
	b.Run("follow", func(b *testing.B) {
		if _, _, err := d.Decide(ctx, "mf", DecisionPublished); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if got, _, err := d.Decide(ctx, "mf", DecisionUndone); err != nil || got != DecisionPublished {
				b.Fatal(got, err)
			}
		}
	})
}
