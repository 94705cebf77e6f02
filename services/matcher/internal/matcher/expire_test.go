package matcher

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// due pools n tickets of prefix in r's 1v1 pool, each past its max wait
// by past, its message answered on ack.<id>; it returns their ids. With
// fit they all fit each other (one skill); else none fits a match: each
// a party of two in a mode of teams of one (pool.MatchAround), since
// skills apart would not do, a sweep trying a due ticket once more at
// its widest window (runner.matchDue).
func due(t testing.TB, r *runner, prefix string, n int, past time.Duration, fit bool) []string {
	t.Helper()
	p := r.pools["1v1"]
	created := time.Now().Add(-time.Duration(p.Mode().MaxWait) - past)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
		en := &pool.Entry{TicketID: ids[i], Players: []string{"p" + ids[i], "mate-" + ids[i]}, Skill: 1000 + 1000*i, Created: created.UnixNano(), Seq: uint64(i + 1), Ack: "ack." + ids[i]}
		if fit {
			en.Players, en.Skill = en.Players[:1], 1700
		}
		if err := en.SetAttributes(p.Mode(), nil); err != nil {
			t.Fatal(err)
		}
		p.Add(en)
	}
	return ids
}

// linkedRunner is a runner of shard eu.gold whose connection goes
// through link, with publishTimeout.
func (e *env) linkedRunner(t *testing.T, publishTimeout time.Duration) (*runner, *testkit.Link) {
	t.Helper()
	link := testkit.NewLink(t, strings.TrimPrefix(e.srv.ClientURL(), "nats://"))
	js := testkit.JetStream(t, testkit.ConnectURL(t, link.URL()))
	return newRunner(e.faultWorker(t, js, publishTimeout), euGold), link
}

// sweepUnderCut runs one sweep of r while link is cut, heals it, and
// returns how long the sweep took.
func sweepUnderCut(t *testing.T, r *runner, link *testkit.Link) time.Duration {
	t.Helper()
	link.Cut(testkit.Both)
	start := time.Now()
	r.sweep(t.Context(), t.Context(), r.now())
	took := time.Since(start)
	link.Heal()
	return took
}

// answers collects the answer to each ticket's message (ack.<id>) on nc:
// the last one heard, by ticket id.
func answers(t *testing.T, nc *nats.Conn) func() map[string]string {
	t.Helper()
	var mu sync.Mutex
	got := map[string]string{}
	sub, err := nc.Subscribe("ack.>", func(m *nats.Msg) {
		mu.Lock()
		got[strings.TrimPrefix(m.Subject, "ack.")] = string(m.Data)
		mu.Unlock()
		_ = m.Respond(nil) // a nak is confirmed (acker)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() map[string]string {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[string]string, len(got))
		for k, v := range got {
			out[k] = v
		}
		return out
	}
}

// TestASweepUnderACutWaitsOutOneBound: a sweep finds 40 tickets past
// their max wait while its connection to NATS is cut. Before, it tried
// each expiry in turn, each waiting out the publish timeout: the shard's
// loop, and every match of it, held 40 timeouts (12 s here). Now the
// expiries run expiryParallel at once (4 here), and once one finds
// JetStream failing the rest are nakked untried; each ticket is nakked,
// none acked, to be expired at a later sweep.
func TestASweepUnderACutWaitsOutOneBound(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	e := newEnv(t)
	r, link := e.linkedRunner(t, timeout)
	r.ends.parallel = 4
	ids := due(t, r, "cut", 40, time.Hour, false)
	heard := answers(t, e.nc)
	took := sweepUnderCut(t, r, link)
	// One wave of four waits out the bound; the serial sweep took 40
	// bounds, and the parallel one without the cut-off ten waves.
	if took > 4*timeout {
		t.Errorf("the sweep under a cut took %s, want about one publish timeout (%s)", took, timeout)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(heard()) == len(ids) }, "not every due ticket was answered")
	for id, a := range heard() {
		if a != string(nakNow) {
			t.Errorf("ticket %s answered %q under the cut, want %q", id, a, nakNow)
		}
	}
	if n := r.pools["1v1"].Len(); n != 0 {
		t.Errorf("%d due tickets left in the pool", n)
	}
}

// TestASweepExpiresEveryDueTicketOnce: the expiries of one sweep run
// together; each of 100 due tickets is claimed expired, its player told
// once, and its message acked.
func TestASweepExpiresEveryDueTicketOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newRunner(e.boundWorker(t), euGold)
	ids := due(t, r, "due", 100, time.Hour, false)
	heard := answers(t, e.nc)
	told := testkit.Collect(t, e.nc, e.subj.AllResults())
	r.sweep(t.Context(), t.Context(), r.now())
	claims := e.claims(t)
	for _, id := range ids {
		if own, err := claims.Owner(t.Context(), id); err != nil || own != events.OwnerExpired {
			t.Errorf("claim of %s: %q (%v), want %q", id, own, err, events.OwnerExpired)
		}
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(told()) >= len(ids) && len(heard()) == len(ids) }, "not every due ticket was told and answered")
	byPlayer := results(t, told())
	for _, id := range ids {
		rs := byPlayer["p"+id]
		if len(rs) != 1 || rs[0].Status != events.StatusExpired || rs[0].TicketID != id {
			t.Errorf("player of %s told %+v, want expired once", id, rs)
		}
		if a := heard()[id]; a != string(ackDone) {
			t.Errorf("ticket %s answered %q, want %q", id, a, ackDone)
		}
	}
}

// BenchmarkSweepExpiries: a sweep that finds 1,000 tickets past their
// max wait, against an embedded NATS server in this process; ns/op is
// the sweep's wall time, how long the shard's loop matches nothing.
func BenchmarkSweepExpiries(b *testing.B) {
	e := newEnv(b)
	r := newRunner(e.boundWorker(b), euGold)
	for i := range b.N {
		b.StopTimer()
		due(b, r, fmt.Sprintf("b%d", i), 1000, time.Hour, false)
		b.StartTimer()
		r.sweep(b.Context(), b.Context(), r.now())
	}
}

// TestASweepUnderACutRetriesOneUnpublishedMatch: a runner keeps ten
// matches whose publish failed, and its sweep retries them while its
// connection is cut. Before, each retry waited out the publish timeout
// in turn (3 s here); now the first failure leaves the rest for the next
// sweep, untried, and every one is kept.
func TestASweepUnderACutRetriesOneUnpublishedMatch(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	e := newEnv(t)
	r, link := e.linkedRunner(t, timeout)
	for i := range 10 {
		id := fmt.Sprintf("unsent-%d", i)
		r.unpublished = append(r.unpublished, unpublishedMatch{match: events.Match{MatchID: id, Region: "eu", Tier: "gold", Mode: "1v1"}})
	}
	took := sweepUnderCut(t, r, link)
	if took > 4*timeout {
		t.Errorf("the sweep under a cut took %s, want about one publish timeout (%s)", took, timeout)
	}
	if len(r.unpublished) != 10 {
		t.Errorf("%d unpublished matches kept after a sweep under a cut, want 10", len(r.unpublished))
	}
}

// TestExpiriesOfOneMatchRecoverItOnce: the four due tickets of a sweep
// are held by one match, decided published and not sent (its matcher
// died between the two). Their expiries, run together, share its
// recovery: the match is sent once and each player told "matched" once.
// Before, each expiry sent it, and each player heard "matched" up to four
// times (the streams stored one copy).
func TestExpiriesOfOneMatchRecoverItOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.boundWorker(t)
	r := newRunner(w, euGold)
	ids := due(t, r, "held", 4, time.Hour, false)
	ctx := t.Context()
	const matchID = "m-held"
	m := events.Match{SchemaVersion: events.SchemaVersion, MatchID: matchID, Mode: "1v1", Region: "eu", Tier: "gold", CreatedAt: time.Now().UTC()}
	claims := e.claims(t)
	for i, id := range ids {
		m.Tickets = append(m.Tickets, events.MatchTicket{TicketID: id, Players: []string{"p" + id, "mate-" + id}, Skill: 1000, Team: i % 2, CreatedAt: time.Now().UTC()})
		if won, _, err := claims.Claim(ctx, id, events.MatchOwner(matchID)); err != nil || !won {
			t.Fatalf("claim %s: %v %v", id, won, err)
		}
	}
	data, _ := json.Marshal(m)
	if _, err := w.state.matches.Put(ctx, matchID, data); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.state.decisions.Decide(ctx, matchID, events.DecisionPublished); err != nil {
		t.Fatal(err)
	}
	heard := answers(t, e.nc)
	told := testkit.Collect(t, e.nc, e.subj.AllResults())
	sent := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	r.sweep(ctx, ctx, r.now())
	testkit.Eventually(t, 10*time.Second, func() bool { return len(heard()) == len(ids) && len(sent()) > 0 }, "the held tickets were not answered, or the match not sent")
	time.Sleep(300 * time.Millisecond) // a second send, if any
	if n := len(sent()); n != 1 {
		t.Errorf("match sent %d times, want once", n)
	}
	byPlayer := results(t, told())
	for _, id := range ids {
		if rs := byPlayer["p"+id]; len(rs) != 1 || rs[0].Status != events.StatusMatched {
			t.Errorf("player of %s told %+v, want matched once", id, rs)
		}
		if a := heard()[id]; a != string(ackDone) {
			t.Errorf("ticket %s answered %q, want %q", id, a, ackDone)
		}
	}
}

// TestASweepUnderACutWaitsOutOneBoundForDueTicketsThatFit: as
// TestASweepUnderACutWaitsOutOneBound, for 1,000 due tickets that fit
// each other. The sweep tries them for matches first (matchDue); under a cut
// each commit's outcome waits out the bound, and before, the sweep waited
// for room among the matches in flight once per 64 matches (review: five
// bounds for 600). Now it forms no more than there is room for, and
// expires the rest as before.
func TestASweepUnderACutWaitsOutOneBoundForDueTicketsThatFit(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	e := newEnv(t)
	r, link := e.linkedRunner(t, timeout)
	due(t, r, "fit", 1000, time.Second, true)
	if took := sweepUnderCut(t, r, link); took > 4*timeout {
		t.Errorf("the sweep under a cut took %s, want about one publish timeout (%s)", took, timeout)
	}
}

// TestTicketsLongPastTheirMaxWaitAreNotTriedAgain: two due tickets that
// fit each other, waiting dueMatchFor and more past their max wait, are
// expired by the sweep, not matched: a due ticket whose commits keep
// failing (the matches bucket without a leader, the claims answering)
// was tried at every sweep, and never expired (review).
func TestTicketsLongPastTheirMaxWaitAreNotTriedAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newRunner(e.boundWorker(t), euGold)
	ids := due(t, r, "long", 2, dueMatchFor+time.Second, true)
	r.sweep(t.Context(), t.Context(), r.now())
	if len(r.forming) > 0 || r.committing > 0 {
		t.Fatalf("%d matches formed, %d committing; want none", len(r.forming), r.committing)
	}
	claims := e.claims(t)
	for _, id := range ids {
		if own, err := claims.Owner(t.Context(), id); err != nil || own != events.OwnerExpired {
			t.Errorf("claim of %s: %q (%v), want %q", id, own, err, events.OwnerExpired)
		}
	}
}

// TestDueTicketsThatFitEachOtherAreMatchedNotExpired: two tickets that
// fit each other wait past their max wait (the claims went unanswered
// while their wait ran out: chaos S51c and S54, after a NATS server's
// restart met a cut), beside one that fits neither. The sweep matches
// the two and expires the third. Before, it expired all three first,
// and the two were told "expired" beside each other.
func TestDueTicketsThatFitEachOtherAreMatchedNotExpired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newRunner(e.boundWorker(t), euGold)
	p := r.pools["1v1"]
	created := time.Now().Add(-time.Duration(p.Mode().MaxWait) - 3*time.Second)
	fit := []string{"fit-a", "fit-b"}
	for i, id := range fit {
		e.liveTicket(t, "p"+id, id, created)
		en := &pool.Entry{TicketID: id, Players: []string{"p" + id}, Skill: 1700 + i, Created: created.UnixNano(), Seq: uint64(10 + i), Ack: "ack." + id}
		if err := en.SetAttributes(p.Mode(), nil); err != nil {
			t.Fatal(err)
		}
		p.Add(en)
	}
	lonely := due(t, r, "lonely", 1, time.Hour, false)[0]
	r.sweep(t.Context(), t.Context(), r.now())
	r.commitFormed(t.Context()) // as the run loop does at the end of a sweep's turn
	if r.committing > 0 {
		select {
		case o := <-r.committed:
			r.settleCommit(t.Context(), o, false)
		case <-time.After(10 * time.Second):
			t.Fatal("the commit did not return")
		}
	}
	claims := e.claims(t)
	for _, id := range fit {
		own, err := claims.Owner(t.Context(), id)
		if _, isMatch := events.OwnerMatchID(own); err != nil || !isMatch {
			t.Errorf("claim of %s: %q (%v), want a match's", id, own, err)
		}
	}
	if own, err := claims.Owner(t.Context(), lonely); err != nil || own != events.OwnerExpired {
		t.Errorf("claim of %s: %q (%v), want %q", lonely, own, err, events.OwnerExpired)
	}
}
