package events_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TakeFirst makes a ticket live where that ends nothing waiting (no live
// ticket, or a decided one), and stops at a player's undecided ticket
// without ending it: the caller queues the new ticket first then.
func TestTakeFirstEndsNoWaitingTicket(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	t0 := time.Now()
	if got, err := e.players.TakeFirst(ctx, live("a1", t0, "ann"), e.tell); err != nil || !got.Live {
		t.Fatalf("a first ticket: %+v, %v", got, err)
	}
	_, err := e.players.TakeFirst(ctx, live("a2", t0.Add(time.Second), "ann"), e.tell)
	if !errors.Is(err, events.ErrWouldSupersede) {
		t.Fatalf("over the waiting a1: %v, want ErrWouldSupersede", err)
	}
	if own, err := e.claims.Owner(ctx, "a1"); err != nil || own != "" || len(e.told["a1"]) != 0 {
		t.Fatalf("a1 claimed %q (%v), told %v: TakeFirst ended a waiting ticket", own, err, e.told["a1"])
	}
	e.wantLive(t, "ann", "a1")
	// Once a1 is decided, the next ticket is taken first.
	if won, _, err := e.claims.Claim(ctx, "a1", events.OwnerCancelled); err != nil || !won {
		t.Fatalf("cancel a1: %v %v", won, err)
	}
	if got, err := e.players.TakeFirst(ctx, live("a3", t0.Add(2*time.Second), "ann"), e.tell); err != nil || !got.Live {
		t.Fatalf("after a decided a1: %+v, %v", got, err)
	}
	// Take still supersedes a waiting ticket.
	if got, err := e.players.Take(ctx, live("a4", t0.Add(3*time.Second), "ann"), e.tell); err != nil || !got.Live || len(got.Superseded) != 1 {
		t.Fatalf("Take over the waiting a3: %+v, %v", got, err)
	}
}

// A ticket claimed by a match that is not decided published is not ended
// yet: the match's check, finding a newer ticket live, would undo it and
// supersede the ticket by one whose creation may still fail (review R1).
// TakeFirst stops there, as at a waiting ticket; once the match is
// published, the player's next ticket is taken first.
func TestTakeFirstEndsNoTicketOfAMatchNotPublished(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	decisions := e.decisions(t)
	t0 := time.Now()
	e.claimedFor(t, live("a1", t0, "ann"), events.MatchOwner("m1"))
	check := func(step string, want error) {
		t.Helper()
		_, err := e.players.TakeFirst(ctx, live("a2", t0.Add(time.Second), "ann"), e.tell)
		if !errors.Is(err, want) && (want != nil || err != nil) {
			t.Fatalf("%s: TakeFirst over a1: %v, want %v", step, err, want)
		}
		cur, err := e.players.Live(ctx, "ann")
		if err != nil {
			t.Fatal(err)
		}
		if wantLive := map[bool]string{true: "a2", false: "a1"}[want == nil]; cur != wantLive {
			t.Fatalf("%s: ann's live ticket %q, want %s", step, cur, wantLive)
		}
	}
	check("m1 undecided", events.ErrWouldSupersede)
	if _, _, err := decisions.Decide(ctx, "m1", events.DecisionPublished); err != nil {
		t.Fatal(err)
	}
	check("m1 published", nil)

	// A match decided undone (another of its tickets was stale) gives its
	// fresh tickets back to wait: not ended (review R2: the test above
	// passed on a TakeFirst that counted any decision as ended).
	e.claimedFor(t, live("b1", t0, "bob"), events.MatchOwner("m2"))
	if _, _, err := decisions.Decide(ctx, "m2", events.DecisionUndone); err != nil {
		t.Fatal(err)
	}
	if _, err := e.players.TakeFirst(ctx, live("b2", t0.Add(time.Second), "bob"), e.tell); !errors.Is(err, events.ErrWouldSupersede) {
		t.Fatalf("TakeFirst over b1 of an undone match: %v, want ErrWouldSupersede", err)
	}
	e.wantLive(t, "bob", "b1")
}

// A decision that cannot be read (the matches bucket away) does not fail
// a returning player's TakeFirst but sends the creation the long way
// (ErrWouldSupersede), which needs no decision (review R2).
func TestTakeFirstWithoutDecisionsQueuesFirst(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	t0 := time.Now()
	e.claimedFor(t, live("a1", t0, "ann"), events.MatchOwner("m1"))
	if err := e.js.DeleteKeyValue(ctx, events.Subjects{}.MatchesBucket()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.players.TakeFirst(ctx, live("a2", t0.Add(time.Second), "ann"), e.tell); !errors.Is(err, events.ErrWouldSupersede) {
		t.Fatalf("TakeFirst with the matches bucket away: %v, want ErrWouldSupersede", err)
	}
}

// TestTakeFirstOfANewPlayerReadsNothing: a player with no entry is made
// live by a write at revision 0, with no read of their key (a leader
// read is a JetStream API request: BENCHMARKS.md, "Ninth round"); a key
// with any message (a live ticket, a delete marker) is read first, as
// before, and ends as Take would leave it.
func TestTakeFirstOfANewPlayerReadsNothing(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	nc := e.js.Conn()
	see := testkit.Collect(t, nc, ">")
	reads := func(from int) (n int) {
		stream := "$JS.API.STREAM.MSG.GET.KV_" + events.Subjects{}.PlayersBucket()
		for _, m := range testkit.Seen(t, nc, see)[from:] {
			if strings.HasPrefix(m.Subject, stream) {
				n++
			}
		}
		return n
	}
	t0 := time.Now()
	if got, err := e.players.TakeFirst(ctx, live("a1", t0, "ann", "amy"), e.tell); err != nil || !got.Live {
		t.Fatalf("a new party's ticket: %+v, %v", got, err)
	}
	if n := reads(0); n != 0 {
		t.Errorf("TakeFirst of new players read their keys %d times, want 0", n)
	}
	e.wantLive(t, "ann", "a1")
	e.wantLive(t, "amy", "a1")
	// A returning player whose ticket was decided: read, then replaced.
	if won, _, err := e.claims.Claim(ctx, "a1", events.OwnerCancelled); err != nil || !won {
		t.Fatalf("cancel a1: %v %v", won, err)
	}
	from := len(testkit.Seen(t, nc, see))
	if got, err := e.players.TakeFirst(ctx, live("a2", t0.Add(time.Second), "ann"), e.tell); err != nil || !got.Live {
		t.Fatalf("a returning player's ticket: %+v, %v", got, err)
	}
	if n := reads(from); n == 0 {
		t.Errorf("TakeFirst over a decided ticket read nothing")
	}
	// A key whose last message is a delete marker holds no live ticket.
	kv, err := e.js.KeyValue(ctx, events.Subjects{}.PlayersBucket())
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "amy"); err != nil {
		t.Fatal(err)
	}
	if got, err := e.players.TakeFirst(ctx, live("a3", t0.Add(2*time.Second), "amy"), e.tell); err != nil || !got.Live {
		t.Fatalf("over a delete marker: %+v, %v", got, err)
	}
	e.wantLive(t, "amy", "a3")
	// The id stays bound to its first players.
	if _, err := e.players.TakeFirst(ctx, live("a3", t0.Add(3*time.Second), "eve"), e.tell); !errors.Is(err, events.ErrTicketIDTaken) {
		t.Fatalf("a3 for eve: %v, want ErrTicketIDTaken", err)
	}
	e.wantLive(t, "eve", "")
}

// TestTakeFirstAfterAPublishedMatchClaimsNothing: a returning player's
// last ticket is its published match's; TakeFirst makes the new ticket
// live without trying to supersede the old one, a claim the match's
// would refuse (a refused create and a read, on every returning player's
// creation), and the old claim stays the match's, its players untold.
// TakeFirstFresh does the same without reading the new ticket's own claim.
func TestTakeFirstAfterAPublishedMatchClaimsNothing(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	decisions := e.decisions(t)
	t0 := time.Now()
	e.claimedFor(t, live("a1", t0, "ann"), events.MatchOwner("m1"))
	if _, _, err := decisions.Decide(ctx, "m1", events.DecisionPublished); err != nil {
		t.Fatal(err)
	}
	nc := e.js.Conn()
	claims := "$KV." + events.Subjects{}.ClaimsBucket() + "."
	see := testkit.Collect(t, nc, ">")
	readsOf := func(from int, key string) (n int) {
		for _, m := range testkit.Seen(t, nc, see)[from:] {
			if strings.HasPrefix(m.Subject, "$JS.API.") && strings.Contains(string(m.Data), `"`+claims+key+`"`) {
				n++
			}
		}
		return n
	}
	claimWrites := func() (n int) {
		for _, m := range testkit.Seen(t, nc, see) {
			if m.Subject == claims+"a1" {
				n++
			}
		}
		return n
	}
	if got, err := e.players.TakeFirst(ctx, live("a2", t0.Add(time.Second), "ann"), e.tell); err != nil || !got.Live || len(got.Superseded) != 0 {
		t.Fatalf("TakeFirst after a1's published match: %+v, %v", got, err)
	}
	if n := claimWrites(); n != 0 {
		t.Errorf("%d writes to a1's claim, want none", n)
	}
	if own, err := e.claims.Owner(ctx, "a1"); err != nil || own != events.MatchOwner("m1") || len(e.told["a1"]) != 0 {
		t.Fatalf("a1 claimed %q (%v), told %v; want m1's, untold", own, err, e.told["a1"])
	}
	e.wantLive(t, "ann", "a2")
	// TakeFirst read a2's own claim (its id may have been a ticket's
	// before); TakeFirstFresh, for an id made just now, reads none of its own.
	if n := readsOf(0, "a2"); n == 0 {
		t.Errorf("TakeFirst did not read a2's own claim")
	}
	if won, _, err := e.claims.Claim(ctx, "a2", events.MatchOwner("m2")); err != nil || !won {
		t.Fatalf("claim a2 for m2: %v %v", won, err)
	}
	if _, _, err := decisions.Decide(ctx, "m2", events.DecisionPublished); err != nil {
		t.Fatal(err)
	}
	from := len(testkit.Seen(t, nc, see))
	if got, err := e.players.TakeFirstFresh(ctx, live("a3", t0.Add(2*time.Second), "ann"), e.tell); err != nil || !got.Live {
		t.Fatalf("TakeFirstFresh after a2's published match: %+v, %v", got, err)
	}
	if n := readsOf(from, "a3"); n != 0 {
		t.Errorf("TakeFirstFresh read a3's own claim %d times, want 0", n)
	}
	if n := readsOf(from, "a2"); n == 0 {
		t.Errorf("TakeFirstFresh did not read a2's claim (whether a2 has ended)")
	}
}

// TestTakeFirstFreshSendsTheEntryWithTheBind: a fresh id's bind and its
// player's entry go out together, one round trip (createFresh). With
// the answers held back (the link cut from the server to the client),
// the entry is stored all the same: sent one after the other, it waits
// for the bind's answer and is never sent. An id bound already (never,
// for a fresh one) is still checked: a party's other ticket with that id
// is refused.
func TestTakeFirstFreshSendsTheEntryWithTheBind(t *testing.T) {
	t.Parallel()
	s := testkit.RunServer(t)
	js := testkit.JetStream(t, testkit.Connect(t, s))
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	link := testkit.NewLink(t, s.Addr().String())
	cjs := testkit.JetStream(t, testkit.ConnectURL(t, link.URL()))
	players := bindPlayers(t, cjs, events.Subjects{})
	kv, err := js.KeyValue(t.Context(), events.Subjects{}.PlayersBucket())
	if err != nil {
		t.Fatal(err)
	}
	link.Cut(testkit.Down)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := players.TakeFirstFresh(ctx, live("f1", time.Now(), "fay"), func(context.Context, events.LiveTicket, string) error { return nil })
		done <- err
	}()
	testkit.Eventually(t, 2*time.Second, func() bool {
		_, err := kv.Get(t.Context(), "fay")
		return err == nil
	}, "fay's entry not stored while the bind's answer was held back")
	if _, err := kv.Get(t.Context(), "ticket.f1"); err != nil {
		t.Fatalf("f1's bind: %v", err)
	}
	link.Heal()
	<-done
	// Bound to fay: the same id for another player is refused, and the
	// entry sent beside the bind is taken back.
	if _, err := players.TakeFirstFresh(t.Context(), live("f1", time.Now(), "gus"), nil); !errors.Is(err, events.ErrTicketIDTaken) {
		t.Fatalf("f1 for gus: %v, want ErrTicketIDTaken", err)
	}
	if cur, err := players.Live(t.Context(), "gus"); err != nil || cur != "" {
		t.Fatalf("gus's live ticket %q (%v), want none", cur, err)
	}
}

// TestTakeFirstFreshTakesBackTheEntryOfAFailedBind: a bind lost on the
// way beside an entry stored (the bucket fails every bind here) fails
// the take and takes the entry back: no entry names an id bound to
// nobody, which a publisher could then bind to players of its own
// (review R12's M1).
func TestTakeFirstFreshTakesBackTheEntryOfAFailedBind(t *testing.T) {
	t.Parallel()
	js := provisioned(t, events.Topology{})
	players := bindPlayers(t, failedBinds{js}, events.Subjects{})
	if _, err := players.TakeFirstFresh(t.Context(), live("b1", time.Now(), "pat"), nil); err == nil {
		t.Fatal("a take whose bind failed succeeded")
	}
	if cur, err := players.Live(t.Context(), "pat"); err != nil || cur != "" {
		t.Fatalf("pat's live ticket %q (%v) after a failed bind, want none", cur, err)
	}
	// tim's entry is stored but its answer lost (a timeout): taken back
	// all the same.
	if _, err := players.TakeFirstFresh(t.Context(), live("b2", time.Now(), lostAnswer), nil); err == nil {
		t.Fatal("a take whose bind failed succeeded")
	}
	if cur, err := players.Live(t.Context(), lostAnswer); err != nil || cur != "" {
		t.Fatalf("%s's live ticket %q (%v) after a failed bind, want none", lostAnswer, cur, err)
	}
}

// lostAnswer is the player whose entry failedBinds stores and then
// answers with a timeout.
const lostAnswer = "tim"

// failedBinds is a JetStream whose players bucket fails every bind (a
// create of a "ticket." key), as a bind lost on the way, and answers
// lostAnswer's stored entry with a timeout (events.KeyValueWrapper).
type failedBinds struct{ jetstream.JetStream }

func (f failedBinds) WrapKeyValue(kv jetstream.KeyValue) jetstream.KeyValue {
	if kv.Bucket() != (events.Subjects{}).PlayersBucket() {
		return kv
	}
	return failedBindKV{kv}
}

type failedBindKV struct{ jetstream.KeyValue }

func (kv failedBindKV) Create(ctx context.Context, key string, v []byte, o ...jetstream.KVCreateOpt) (uint64, error) {
	if strings.HasPrefix(key, "ticket.") {
		return 0, errors.New("bind lost on the way")
	}
	rev, err := kv.KeyValue.Create(ctx, key, v, o...)
	if key == lostAnswer && err == nil {
		return 0, context.DeadlineExceeded
	}
	return rev, err
}
