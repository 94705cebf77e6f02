package events_test

import (
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestLeaderLasts: the last message of each subject, nil for a subject
// with none, an error for a wildcard or a stream that does not exist
// (not taken for "no message": both are 404s).
func TestLeaderLasts(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	js := testkit.JetStream(t, nc)
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	pub := events.NewPublisher(js, subj)
	for _, r := range []events.Result{
		{TicketID: "t1", PlayerID: "p1", Status: events.StatusQueued},
		{TicketID: "t2", PlayerID: "p2", Status: events.StatusQueued},
		{TicketID: "t1", PlayerID: "p1", Status: events.StatusCancelled},
	} {
		if err := pub.Result(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	subjects := []string{subj.Result("p1"), subj.Result("nobody"), subj.Result("p2"), subj.AllResults()}
	msgs, errs := events.LeaderLasts(t.Context(), nc, subj.ResultsStream(), subjects)
	for i, want := range []events.Status{events.StatusCancelled, "", events.StatusQueued} {
		if errs[i] != nil {
			t.Fatalf("%s: %v", subjects[i], errs[i])
		}
		if want == "" {
			if msgs[i] != nil {
				t.Fatalf("%s: got %+v, want none", subjects[i], msgs[i])
			}
			continue
		}
		r, err := events.DecodeResult(msgs[i].Data)
		if err != nil || r.Status != want || msgs[i].Subject != subjects[i] || msgs[i].Sequence == 0 {
			t.Fatalf("%s: got %+v (%v) at %d, want %s", subjects[i], r, err, msgs[i].Sequence, want)
		}
	}
	if errs[3] == nil {
		t.Fatalf("a wildcard read as one subject: %+v", msgs[3])
	}
	_, errs = events.LeaderLasts(t.Context(), nc, "NO_SUCH_STREAM", subjects[:1])
	if errs[0] == nil {
		t.Fatal("a stream that does not exist read as a subject with no message")
	}
}
