package matcher

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestCopyOfATicketRequeuedWithAClaimLeftBehindIsKept: lo (eu.bronze,
// home) was matched in M with partner pa through lo's visitor copy in
// silver; M is published and sent, and its notice reached eu.bronze,
// whose claim read drops lo's home message (rightly: M holds lo and pa).
// The allocator then finds no server and requeues M, giving back pa's
// claim but not lo's, and lo is published again on its home subject.
// (The allocator gives back every claim before it publishes anything,
// and a release that fails stops its requeue; this plays one that did
// not, an allocator of an older version say: the copy check is safe on
// its own, as recoverMatch is, which gives the claim back.) eu.bronze still remembers M's notice for lo, so the
// requeued message's claim is read at once, and found M's: but M holds
// only some of its claims, a requeue under way, and the message stays,
// to be matched once the claim is given back. Dropped, lo had no message
// anywhere and its player, told "queued", waited for good.
func TestCopyOfATicketRequeuedWithAClaimLeftBehindIsKept(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.boundWorker(t)
	r := newRunner(w, events.Shard{Region: "eu", Tier: "bronze"})
	ctx := t.Context()
	p, lo := pooledLo(t, e, r)

	// M: lo (its visitor copy in eu.silver) and pa; stored, claimed,
	// decided published and sent, as a commit in eu.silver leaves it.
	const matchID = "m-visitor"
	m := events.Match{SchemaVersion: events.SchemaVersion, MatchID: matchID, Mode: "1v1", Region: "eu", Tier: "silver",
		CreatedAt: time.Now().UTC(), Tickets: []events.MatchTicket{
			{TicketID: "lo", Players: []string{"lo"}, Skill: 1100, Tier: "bronze", CreatedAt: time.Unix(0, lo.Created).UTC()},
			{TicketID: "pa", Players: []string{"pa"}, Skill: 1250, Team: 1, CreatedAt: time.Now().UTC()},
		}}
	data, _ := json.Marshal(m)
	if _, err := w.state.matches.Put(ctx, matchID, data); err != nil {
		t.Fatal(err)
	}
	claims := e.claims(t)
	if lost, err := claims.ClaimAll(ctx, []string{"lo", "pa"}, events.MatchOwner(matchID)); err != nil || len(lost) > 0 {
		t.Fatal(lost, err)
	}
	if _, _, err := w.state.decisions.Decide(ctx, matchID, events.DecisionPublished); err != nil {
		t.Fatal(err)
	}
	if err := w.state.decisions.MarkSent(ctx, matchID); err != nil {
		t.Fatal(err)
	}

	// The notice: lo's home message is dropped (M holds lo: right).
	r.takeMatchedNotice(ctx, events.MatchedNotice{TicketID: "lo", MatchID: matchID, HomeRegion: "eu", HomeTier: "bronze"})
	r.settleCopyCheck(ctx, <-r.copies.checks, false)
	if p.Contains(lo) {
		t.Fatal("setup: lo's home message kept")
	}

	// The allocator requeues M: pa's claim is given back, lo's is left
	// behind; lo is published again on its home subject.
	if err := claims.Release(ctx, []string{"pa"}, events.MatchOwner(matchID)); err != nil {
		t.Fatal(err)
	}
	if err := events.NewPublisher(e.js, e.subj).Requeue(ctx, m, m.Tickets[0]); err != nil {
		t.Fatal(err)
	}
	cons, err := e.js.Consumer(ctx, e.subj.TicketsStream(), "tickets-eu-bronze")
	if err != nil {
		t.Fatal(err)
	}
	requeued := fetchOne(t, cons)
	if requeued == nil {
		t.Fatal("setup: requeued lo not delivered")
	}
	r.add(ctx, requeued)
	r.settleAdmission(ctx, <-r.admitted, false)
	if r.copies.underway > 0 {
		r.settleCopyCheck(ctx, <-r.copies.checks, false)
	}

	// What the system itself says of lo's claim: M is published with only
	// some of its claims, so it is the allocator's requeue, and the claim
	// is released for lo to be matched again (recoverMatch, past
	// staleClaim).
	later := time.Now().Add(staleClaim + time.Second)
	r.commits.rec.now = func() time.Time { return later }
	if got := r.commits.rec.recoverMatch(ctx, matchID, "lo"); got != released {
		t.Fatalf("recoverMatch(M) = %v, want released (M was requeued)", got)
	}
	if _, ok := p.Get("lo"); !ok {
		t.Fatal("LOST: lo's requeued message was acked by a matched-notice claim read (claim still M's after a failed release); " +
			"lo has no message, its claim is now free, and its player was told \"queued\"")
	}
}
