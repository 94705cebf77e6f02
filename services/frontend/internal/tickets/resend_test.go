package tickets

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
)

// TestExpiryPublishesAgainATicketOfAnUnsentMatch: a ticket past its
// wait is held by match m1's claim, m1 was never sent (no sent mark), and
// the ticket's message is gone from TICKETS (as in chaos seed 31's run
// a). Its expiry stops at the claim, as before; once m1's record is older
// than events.UnsentGrace, it also publishes the ticket again, under a
// message id of its own and the match's (a second expiry within the
// duplicate window stores nothing more), so that its shard's owner meets
// the claim and settles m1. Within the grace (a live matcher still
// sending it), once m1 is sent, or with a claim that is not a match's, an
// expiry publishes nothing.
func TestExpiryPublishesAgainATicketOfAnUnsentMatch(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	ctx := t.Context()
	id := e.create(t, "ann")
	st, err := e.js.Stream(ctx, e.subj.TicketsStream())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctx); err != nil { // the ticket's message is gone
		t.Fatal(err)
	}
	matches, err := e.js.KeyValue(ctx, e.subj.MatchesBucket())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := matches.Put(ctx, "m1", []byte(`{}`)); err != nil { // its record: only its time is read
		t.Fatal(err)
	}
	if won, _, err := e.s.claims.Claim(ctx, id, events.MatchOwner("m1")); err != nil || !won {
		t.Fatalf("setup: claim for m1: %v %v", won, err)
	}

	if r := e.s.Expire(ctx, id); r != results.RetryLater {
		t.Fatalf("expiry of a ticket a match holds left %v owed, want results.RetryLater: NATS answered, and the match is watched each wait", r)
	}
	if n, _ := queued(t, st); n != 0 {
		t.Fatalf("%d tickets published again within the grace of m1's record", n)
	}
	e.s.now = func() time.Time { return time.Now().Add(events.UnsentGrace + time.Second) }
	for range 2 {
		if r := e.s.Expire(ctx, id); r != results.RetryLater {
			t.Fatalf("expiry of a ticket a match holds left %v owed, want results.RetryLater", r)
		}
	}
	n, msg := queued(t, st)
	if n != 1 {
		t.Fatalf("%d tickets published after two expiries, want %s published again once", n, id)
	}
	if tk, err := events.DecodeTicket(msg.Data); err != nil || tk.TicketID != id {
		t.Fatalf("published %+v (%v), want %s", tk, err, id)
	}
	if tier, _ := events.DefaultTiers.For(1650); msg.Subject != e.subj.Ticket("eu", tier) {
		t.Errorf("published again on %s, want its own shard's subject", msg.Subject)
	}
	if got, want := msg.Header.Get(jetstream.MsgIDHeader), events.UnsentMsgID(id, "m1"); got != want {
		t.Errorf("message id %q, want %q", got, want)
	}

	dec, err := events.NewDecisions(ctx, e.js, e.subj)
	if err != nil {
		t.Fatal(err)
	}
	if err := dec.MarkSent(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	e.s.Expire(ctx, id)
	if n, _ := queued(t, st); n != 0 {
		t.Errorf("%d tickets published again though the match was sent", n)
	}

	other := e.create(t, "bob")
	if err := st.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if won, _, err := e.s.claims.Claim(ctx, other, events.OwnerCancelled); err != nil || !won {
		t.Fatalf("setup: claim cancelled: %v %v", won, err)
	}
	e.s.Expire(ctx, other)
	if n, _ := queued(t, st); n != 0 {
		t.Errorf("%d tickets published again for a claim that is not a match's", n)
	}
}

// TestExpiryPublishesAgainATicketOfAnUnsentMatchItsClaimCarries: as
// above, for a match with no record, which its claims carry
// (events.HeaderMatch): its time is its claim's. A claim of a match that
// carries none, with no record, is of a match a matcher counts decided:
// nothing is published for it.
func TestExpiryPublishesAgainATicketOfAnUnsentMatchItsClaimCarries(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	ctx := t.Context()
	id, bare := e.create(t, "ann"), e.create(t, "bob")
	st, err := e.js.Stream(ctx, e.subj.TicketsStream())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctx); err != nil { // the tickets' messages are gone
		t.Fatal(err)
	}
	got := e.s.claims.ClaimBatch(ctx, []events.ClaimGroup{
		{IDs: []string{id}, Owner: events.MatchOwner("m1"), Match: []byte(`{"match_id":"m1"}`)},
		{IDs: []string{bare}, Owner: events.MatchOwner("m2")},
	})
	if got[0].Err != nil || got[1].Err != nil {
		t.Fatalf("setup: claims: %+v", got)
	}
	e.s.Expire(ctx, id)
	if n, _ := queued(t, st); n != 0 {
		t.Fatalf("%d tickets published again within the grace of m1's claim", n)
	}
	e.s.now = func() time.Time { return time.Now().Add(events.UnsentGrace + time.Second) }
	e.s.Expire(ctx, bare)
	if n, _ := queued(t, st); n != 0 {
		t.Fatalf("%d tickets published again for a match with no record whose claim carries none", n)
	}
	e.s.Expire(ctx, id)
	n, msg := queued(t, st)
	if n != 1 || msg.Header.Get(jetstream.MsgIDHeader) != events.UnsentMsgID(id, "m1") {
		t.Fatalf("%d tickets published after the grace of m1's claim, want %s published again once", n, id)
	}
}

// queued is how many messages st holds, and its last one.
func queued(t *testing.T, st jetstream.Stream) (uint64, *jetstream.RawStreamMsg) {
	t.Helper()
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs == 0 {
		return 0, nil
	}
	msg, err := st.GetMsg(t.Context(), info.State.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs, msg
}
