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

func (s *stuckRelease) Owner(ctx context.Context, ticketID string) (string, error) {
	return s.claims.Owner(ctx, ticketID)
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
	kv, err := js.KeyValue(t.Context(), subj.AllocationsBucket())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rel := &stuckRelease{claims: claims, stuck: "lo", fails: 1}
	f := &failure{records: &records{kv: kv, log: log, now: time.Now}, pub: events.NewPublisher(js, subj), claims: rel, requeue: true, met: newMetrics(),
		log: log, now: time.Now}
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

// TestAResumedRequeueSkipsATicketTakenSince (R2-5): a requeue stops
// after giving back pa's claim but not lo's; before the match's next
// delivery another match takes pa (a copy of its ticket, and its player
// told "assigned" there). The next delivery finishes the requeue for lo
// alone: lo is told "queued" and published again, pa neither (it would
// hear "queued" after its assignment, and its ticket be queued twice).
func TestAResumedRequeueSkipsATicketTakenSince(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, true)
	p.fail.claims = &stuckRelease{claims: p.claims, stuck: "lo", fails: 1}
	m := pair("m-part")
	if lost, err := p.claims.ClaimAll(t.Context(), []string{"lo", "pa"}, events.MatchOwner(m.MatchID)); err != nil || len(lost) > 0 {
		t.Fatal(lost, err)
	}
	if err := p.deliver(m, 1); err == nil {
		t.Fatal("requeue with lo's claim kept reported done: the match is acked")
	}
	other := events.MatchOwner("m-other")
	if lost, err := p.claims.ClaimAll(t.Context(), []string{"pa"}, other); err != nil || len(lost) > 0 {
		t.Fatalf("pa's claim, given back, not taken by another match: %v %v", lost, err)
	}
	if err := p.deliver(m, 2); err != nil {
		t.Fatal(err)
	}
	var queued []string
	for _, data := range storedMsgs(t, p.js, p.subj.ResultsStream()) {
		if r, _ := events.DecodeResult(data); r.Status == events.StatusQueued {
			queued = append(queued, r.PlayerID)
		}
	}
	var published []string
	for _, data := range storedMsgs(t, p.js, p.subj.TicketsStream()) {
		tk, err := events.DecodeTicket(data)
		if err != nil {
			t.Fatal(err)
		}
		published = append(published, tk.TicketID)
	}
	if !slices.Equal(queued, []string{"lo"}) || !slices.Equal(published, []string{"lo"}) {
		t.Fatalf("told queued: %v, published again: %v; want lo alone", queued, published)
	}
	if owner, err := p.claims.Owner(t.Context(), "pa"); err != nil || owner != other {
		t.Fatalf("pa's claim = %q, %v; want the other match's", owner, err)
	}
}
