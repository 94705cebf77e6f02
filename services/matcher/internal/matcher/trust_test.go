package matcher

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// liveTicket records ticket id as player's live ticket in the players
// bucket, as a Take would have.
func (e *env) liveTicket(t testing.TB, player, id string, created time.Time) {
	t.Helper()
	kv, err := e.js.KeyValue(t.Context(), e.subj.PlayersBucket())
	if err != nil {
		t.Fatal(err)
	}
	v, _ := json.Marshal(events.LiveTicket{TicketID: id, Players: []string{player}, Region: "eu", Tier: "gold", Mode: "1v1", CreatedAt: created})
	if _, err := kv.Put(t.Context(), player, v); err != nil {
		t.Fatal(err)
	}
}

func ticketAt(id, player string, created time.Time) string {
	return fmt.Sprintf(`{"ticket_id":%q,"player_id":%q,"skill":1650,"created_at":%q}`, id, player, created.Format(time.RFC3339Nano))
}

// TestRecoveredMatchWithASupersededTicketIsNotPublished: a matcher stored
// match m-dead and claimed ta and tb, then died before its check that
// both were still their players' live tickets. Meanwhile player a's newer
// ticket tnew was taken (its supersede of ta lost to the match's claim,
// so tnew was written anyway). The worker that finds m-dead behind the
// claims must check as a commit does: ta is superseded (a is told), tb is
// matched again, and a is in one match at most.
func TestRecoveredMatchWithASupersededTicketIsNotPublished(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	res := testkit.Collect(t, e.nc, e.subj.Result("a"))
	t0 := time.Now().UTC().Add(-2 * time.Second)
	t1 := t0.Add(time.Second)
	dead := events.Match{SchemaVersion: 1, MatchID: "m-dead", Mode: "1v1", Region: "eu", Tier: "gold",
		Tickets: []events.MatchTicket{{TicketID: "ta", Players: []string{"a"}, Skill: 1650, CreatedAt: t0}, {TicketID: "tb", Players: []string{"b"}, Team: 1, Skill: 1650, CreatedAt: t0}}}
	kv, err := e.js.KeyValue(t.Context(), e.subj.MatchesBucket())
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(dead)
	if _, err := kv.Put(t.Context(), "m-dead", data); err != nil {
		t.Fatal(err)
	}
	if lost, err := e.claims(t).ClaimAll(t.Context(), []string{"ta", "tb"}, events.MatchOwner("m-dead")); err != nil || len(lost) != 0 {
		t.Fatalf("claims: %v %v", lost, err)
	}
	e.liveTicket(t, "a", "tnew", t1)
	e.liveTicket(t, "b", "tb", t0)
	e.startWorker(t, Config{})
	e.pub(t, "matchmaking.eu.gold", ticketAt("ta", "a", t0))
	e.pub(t, "matchmaking.eu.gold", ticketAt("tb", "b", t0))
	e.pub(t, "matchmaking.eu.gold", ticketAt("tnew", "a", t1))
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"tc","player_id":"c","skill":1650}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) >= 1 }, "no match")
	for _, m := range matches(t, allocs()) {
		for _, tk := range m.Tickets {
			if tk.TicketID == "ta" {
				t.Fatalf("superseded ticket ta matched in %s (a's live ticket is tnew)", m.MatchID)
			}
		}
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		for _, r := range results(t, res())["a"] {
			if r.TicketID == "ta" && r.Status == events.StatusCancelled && strings.Contains(r.Reason, "tnew") {
				return true
			}
		}
		return false
	}, "a was not told that ta is superseded by tnew")
	noPlayerTwiceInAMatch(t, matches(t, allocs()))
}

// TestSupersededTicketIsToldOnRedeliveryWithEqualCreatedAt: a commit's
// dropStale moved ta's claim to superseded, and its matcher died before
// telling ta's player. tnew, a's live ticket, has the same created_at.
// When ta comes back, its player must be told (once).
func TestSupersededTicketIsToldOnRedeliveryWithEqualCreatedAt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := testkit.Collect(t, e.nc, e.subj.Result("a"))
	t0 := time.Now().UTC().Add(-2 * time.Second).Truncate(time.Second)
	if won, _, err := e.claims(t).Claim(t.Context(), "ta", events.OwnerSuperseded); !won || err != nil {
		t.Fatalf("claim: %v %v", won, err)
	}
	e.liveTicket(t, "a", "tnew", t0)
	w := e.startWorker(t, Config{})
	e.pub(t, "matchmaking.eu.gold", ticketAt("ta", "a", t0))
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) >= 1 }, "ta is superseded (its claim) but its player was never told")
	testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 }, "ta not acked")
	if rs := results(t, res())["a"]; len(rs) != 1 || rs[0].TicketID != "ta" || rs[0].Status != events.StatusCancelled || !strings.Contains(rs[0].Reason, "tnew") {
		t.Fatalf("a heard %+v, want one cancelled for ta naming tnew", rs)
	}
	if w.waiting() != 0 {
		t.Fatalf("%d tickets pooled", w.waiting())
	}
}

// TestReusedTicketIDIsDeadLetteredNotLive: a publisher reuses another
// player's live ticket id (X, vic's) for its own player. The copy must not
// become anyone's live ticket: it is dead-lettered (its player told), and
// when the publisher's player queues again, the victim's ticket X is not
// superseded: it stays undecided and is matched normally.
func TestReusedTicketIDIsDeadLetteredNotLive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.startWorker(t, Config{})
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	vres := testkit.Collect(t, e.nc, e.subj.Result("vic"))
	ares := testkit.Collect(t, e.nc, e.subj.Result("att"))
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"X","player_id":"vic","skill":1800}`)
	testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() == 1 }, "victim not pooled")
	e.pub(t, "matchmaking.us.gold", `{"ticket_id":"X","player_id":"att","skill":1800}`)
	e.pub(t, "matchmaking.us.gold", `{"ticket_id":"Y","player_id":"att","skill":1800}`)
	testkit.Eventually(t, 5*time.Second, func() bool { return len(dls()) == 1 && w.waiting() == 2 }, "the reused id was not dead-lettered, or Y not pooled")
	if d := deadLetters(t, dls())[0]; !strings.Contains(d.Reason, "ticket_id") || d.Subject != "matchmaking.us.gold" {
		t.Fatalf("dead letter %s: %q", d.Subject, d.Reason)
	}
	if own, err := e.claims(t).Owner(t.Context(), "X"); own != "" || err != nil {
		t.Fatalf("victim's ticket X decided (%q, %v); victim heard %d results", own, err, len(vres()))
	}
	// Nor is X's outcome marked told: vic must still hear it.
	if told, err := e.claims(t).Told(t.Context(), "X", events.OwnerFailed); told || err != nil {
		t.Fatalf("victim's ticket X marked told %v (%v) by the copy's dead letter", told, err)
	}
	// att's result is published only after the dead letter is stored, so
	// the dead letter can be seen first: wait for the result.
	testkit.Eventually(t, 5*time.Second, func() bool { return len(ares()) >= 1 }, "att was never told")
	if rs := results(t, ares())["att"]; len(rs) != 1 || rs[0].Status != events.StatusFailed {
		t.Fatalf("att heard %+v, want one failed", rs)
	}
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"Z","player_id":"zed","skill":1800}`)
	testkit.Eventually(t, 5*time.Second, func() bool { return len(allocs()) == 1 }, "the victim's ticket was not matched")
	if in := matchedTickets(t, matches(t, allocs())); len(in["X"]) != 1 {
		t.Fatalf("matched %v, want X", in)
	}
}

// TestEscapeHeavyTicketIsDeadLettered: a ticket under MaxPayloadBytes made
// of characters JSON writes 6 bytes for (\u003c) must still make a dead
// letter the dead-letter stream takes, from a shard and from the stray
// sweep, and leave the tickets stream.
func TestEscapeHeavyTicketIsDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startWorker(t, Config{})
	e.pub(t, "matchmaking.eu.gold", strings.Repeat("<", 60<<10))
	e.pub(t, "matchmaking.mars.gold", strings.Repeat("\x01", 60<<10))
	testkit.Eventually(t, 10*time.Second, func() bool {
		return testkit.StreamMsgs(t, e.js, e.subj.DeadLetterStream()) == 2 && testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0
	}, "escape-heavy tickets not dead-lettered")
}

// TestStraySweepReadsEachMessageOncePerFilter: stray subjects that one
// covering filter serves (here `matchmaking.*.gold`, which also covers the
// shards' gold tickets) share one scan per sweep: a sweep reads the
// tickets it passes once, not once per stray subject.
func TestStraySweepReadsEachMessageOncePerFilter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const real, strays = 200, 5
	for i := range real {
		e.pub(t, "matchmaking.eu.gold", fmt.Sprintf(`{"player_id":"p%d","skill":1650}`, i))
	}
	for i := range strays {
		e.pub(t, fmt.Sprintf("matchmaking.x%d!.gold", i), `{"player_id":"s","skill":1650}`)
	}
	w, err := New(Config{}, e.js, e.subj, slog.New(slog.NewTextHandler(testLog(), nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sweepStrays(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := testkit.StreamMsgs(t, e.js, e.subj.DeadLetterStream()); n != strays {
		t.Fatalf("%d dead letters, want %d", n, strays)
	}
	if reads := testutil.ToFloat64(w.met.strayReads); reads > real+strays {
		t.Fatalf("one sweep read %.0f messages for %d strays behind %d tickets, want at most %d", reads, strays, real, real+strays)
	}
}
