package tickets

import (
	"context"
	"log/slog"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
)

// outcomesTracker keeps what New gives the tracker's catch-up.
type outcomesTracker struct {
	noTracker
	outcomes results.Outcomes
}

func (o *outcomesTracker) ReadOutcomesWith(f results.Outcomes) { o.outcomes = f }

// TestNewGivesTheTrackerOutcomeBehind: the tracker's catch-up reads a
// ticket whose player has moved on as Get does: its own stored result,
// else what its claim implies, else none (still queued).
func TestNewGivesTheTrackerOutcomeBehind(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	js := testkit.JetStream(t, nc)
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	tr := &outcomesTracker{}
	s, err := New(t.Context(), Config{Regions: events.DefaultRegions, Tiers: events.DefaultTiers}, js, subj, tr, roomEverywhere{}, slog.New(slog.DiscardHandler))
	if err != nil || tr.outcomes == nil {
		t.Fatalf("New: %v; outcomes given: %v", err, tr.outcomes != nil)
	}
	ctx := context.Background()
	for _, c := range []struct{ id, owner string }{{"told", events.OwnerCancelled}, {"untold", events.OwnerExpired}} {
		if won, _, err := s.claims.Claim(ctx, c.id, c.owner); err != nil || !won {
			t.Fatalf("claim %s: %v %v", c.id, won, err)
		}
	}
	pub := events.NewPublisher(js, subj)
	for _, r := range []events.Result{
		{TicketID: "told", PlayerID: "p1", Status: events.StatusCancelled, Reason: "told"},
		{TicketID: "newer", PlayerID: "p1", Status: events.StatusQueued},
	} {
		if err := pub.Result(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := js.Stream(ctx, subj.ResultsStream())
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetLastMsgForSubject(ctx, subj.Result("p1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id     string
		want   events.Status
		reason string
	}{{"told", events.StatusCancelled, "told"}, {"untold", events.StatusExpired, ""}, {"queued", "", ""}} {
		r, err := tr.outcomes(ctx, c.id, "p1", last.Sequence)
		switch {
		case err != nil:
			t.Fatalf("%s: %v", c.id, err)
		case c.want == "" && r != nil:
			t.Fatalf("%s: got %+v, want none", c.id, r)
		case c.want != "" && (r == nil || r.Status != c.want || c.reason != "" && r.Reason != c.reason):
			t.Fatalf("%s: got %+v, want %s", c.id, r, c.want)
		}
	}
}
