package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// stuckRelease gives back real claims, but not ticket stuck's while
// fails is above zero: that release fails (a read or delete of its key
// that timed out), as events.Claims.Release reports it.
type stuckRelease struct {
	claims *events.Claims
	stuck  string
	fails  int
}

func (s *stuckRelease) Release(ctx context.Context, ids []string, owner string) error {
	if s.fails == 0 {
		return s.claims.Release(ctx, ids, owner)
	}
	s.fails--
	if err := s.claims.Release(ctx, slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == s.stuck }), owner); err != nil {
		return err
	}
	return errors.New("release claim of ticket " + s.stuck + ": nats: timeout")
}

// TestRequeueWaitsUntilEveryClaimIsGivenBack: a match with no server is
// requeued, and the claim of one of its tickets cannot be given back. The
// requeue fails before any player is told or any ticket published (a
// ticket published again with its claim still the match's is dropped by
// a matcher that heard the match's matched notice: lost, its player told
// "queued"); the match is nakked. Its next delivery requeues it, and one
// after that (an ack lost) stores nothing twice.
func TestRequeueWaitsUntilEveryClaimIsGivenBack(t *testing.T) {
	t.Parallel()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	claims, err := events.NewClaims(t.Context(), js, subj)
	if err != nil {
		t.Fatal(err)
	}
	rel := &stuckRelease{claims: claims, stuck: "lo", fails: 1}
	f := &failure{pub: events.NewPublisher(js, subj), claims: rel, requeue: true, met: newMetrics(),
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now}
	m := events.Match{SchemaVersion: events.SchemaVersion, MatchID: "m1", Mode: "1v1", Region: "eu", Tier: "gold", Tickets: []events.MatchTicket{
		{TicketID: "lo", Players: []string{"lo"}, Skill: 1500, CreatedAt: time.Now().UTC()},
		{TicketID: "pa", Players: []string{"pa"}, Skill: 1510, Team: 1, CreatedAt: time.Now().UTC()}}}
	if lost, err := claims.ClaimAll(t.Context(), []string{"lo", "pa"}, events.MatchOwner(m.MatchID)); err != nil || len(lost) > 0 {
		t.Fatal(lost, err)
	}
	data, _ := json.Marshal(m)
	handle := f.giveUp(func(*message.Message) ([]*message.Message, error) { return nil, ErrNoCapacity })
	deliver := func() error {
		_, err := handle(message.NewMessage("m1", data))
		return err
	}
	told := func() uint64 { return testkit.StreamMsgs(t, js, subj.ResultsStream()) }
	queued := func() uint64 { return testkit.StreamMsgs(t, js, subj.TicketsStream()) }

	if err := deliver(); err == nil {
		t.Fatal("requeue with lo's claim kept reported done: the match is acked")
	}
	if n, q := told(), queued(); n != 0 || q != 0 {
		t.Fatalf("with lo's claim kept, %d results told and %d tickets published again", n, q)
	}
	if owner, _ := claims.Owner(t.Context(), "lo"); owner != events.MatchOwner(m.MatchID) {
		t.Fatalf("setup: lo's claim is %q", owner)
	}

	for range 2 { // the next delivery, and one more
		if err := deliver(); err != nil {
			t.Fatal(err)
		}
	}
	if n, q := told(), queued(); n != 2 || q != 2 {
		t.Fatalf("requeued twice: %d results, %d tickets; want 2 and 2", n, q)
	}
	for _, id := range []string{"lo", "pa"} {
		if owner, err := claims.Owner(t.Context(), id); err != nil || owner != "" {
			t.Fatalf("claim of %s = %q, %v after the requeue", id, owner, err)
		}
	}
}
