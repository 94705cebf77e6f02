package chaos

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestLostTicketsSayWhatTheStreamHolds: a lost ticket still in the
// TICKETS stream (never acked) is told apart from one that is not there.
func TestLostTicketsSayWhatTheStreamHolds(t *testing.T) {
	s := testkit.RunServer(t)
	js := testkit.JetStream(t, testkit.Connect(t, s))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	subj := events.Subjects{}
	if err := events.Provision(ctx, js, events.Topology{Subjects: subj, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"other", "kept"} {
		tk := events.Ticket{SchemaVersion: events.SchemaVersion, TicketID: id, PlayerID: "p-" + id, Mode: "1v1", Skill: 1700, CreatedAt: time.Now().UTC()}
		if _, err := events.NewPublisher(js, subj).Ticket(ctx, "eu", "gold", tk); err != nil {
			t.Fatal(err)
		}
	}
	// "gone" was claimed by match m1, decided published and never sent.
	claims, err := events.NewClaims(ctx, js, subj)
	if err != nil {
		t.Fatal(err)
	}
	if won, _, err := claims.Claim(ctx, "gone", events.MatchOwner("m1")); err != nil || !won {
		t.Fatalf("claim: %v %v", won, err)
	}
	decisions, err := events.NewDecisions(ctx, js, subj)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := decisions.Decide(ctx, "m1", events.DecisionPublished); err != nil {
		t.Fatal(err)
	}
	// "carried" was claimed by match m2, whose claims carry it (no record).
	claimMatch(t, claims, newMatch("m2", time.Now().UTC(), "carried"))
	acked := []Acked{{TicketID: "kept", PlayerID: "p-kept"}, {TicketID: "gone", PlayerID: "p-gone"}, {TicketID: "carried", PlayerID: "p-carried"}}
	lost := lostTickets(ctx, js, acked, nil)
	if len(lost) != 3 {
		t.Fatalf("got %d lost, want 3: %+v", len(lost), lost)
	}
	if !strings.HasPrefix(lost[0].Stream, "in TICKETS at 2 (matchmaking.eu.gold), never acked; consumer tickets-eu-gold") {
		t.Errorf("kept: %q", lost[0].Stream)
	}
	if !strings.HasPrefix(lost[1].Stream, "not in TICKETS") {
		t.Errorf("gone: %q", lost[1].Stream)
	}
	// What became of its match: decided, not sent, no allocation record,
	// no result for its player.
	match := strings.Join(lost[1].Match, "\n")
	for _, want := range []string{"claims: gone carries no match", "matches: m1 none", "m1.decided PutOp published", "matches: m1.sent none", "allocations: m1 none", "last result: "} {
		if !strings.Contains(match, want) {
			t.Errorf("gone's match %q: no %q", match, want)
		}
	}
	if match := strings.Join(lost[2].Match, "\n"); !strings.Contains(match, "claims: carried carries its match") {
		t.Errorf("carried's match %q: its claim does not carry it", match)
	}
	if lost[0].Match != nil {
		t.Errorf("kept, claimed by nobody: match %q", lost[0].Match)
	}
}
