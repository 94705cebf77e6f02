package matcher

import (
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// boundWorker is a worker bound to its buckets but not running: a test
// drives its runners' pieces (commit, recoverMatch) by hand.
func (e *env) boundWorker(t testing.TB) *Worker {
	t.Helper()
	return e.boundWorkerWith(t, Config{})
}

// boundWorkerWith is boundWorker with cfg.
func (e *env) boundWorkerWith(t testing.TB, cfg Config) *Worker {
	t.Helper()
	js := testkit.JetStream(t, testkit.Connect(t, e.srv))
	w, err := New(cfg, js, e.subj, slog.New(slog.NewTextHandler(testLog(), nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.bindState(t.Context()); err != nil {
		t.Fatal(err)
	}
	return w
}

// slowCommit is matcher A's commit of match M (ta of player a, tb of
// player b, both live since t0), run by hand and held at a step of its
// own, and worker B's runner to recover M with.
type slowCommit struct {
	match   events.Match
	ids     []string
	t0      time.Time
	a, b    *runner
	resume  chan struct{}
	outcome chan commitOutcome
}

// startSlowCommit starts A's commit of M and returns once it is held at
// step (A's commit hook "claimed" or "checked").
func (e *env) startSlowCommit(t *testing.T, step string) *slowCommit {
	t.Helper()
	t0 := time.Now().UTC().Add(-2 * time.Second)
	e.liveTicket(t, "a", "ta", t0)
	e.liveTicket(t, "b", "tb", t0)
	wa, wb := e.boundWorker(t), e.boundWorker(t)
	shard := events.Shard{Region: "eu", Tier: "gold"}
	s := &slowCommit{t0: t0, a: newRunner(wa, shard), b: newRunner(wb, shard), resume: make(chan struct{}), outcome: make(chan commitOutcome, 1)}
	all := []*pool.Entry{
		{TicketID: "ta", Players: []string{"a"}, Skill: 1650, Created: t0.UnixNano(), Seq: 1},
		{TicketID: "tb", Players: []string{"b"}, Skill: 1650, Created: t0.UnixNano(), Seq: 2},
	}
	s.match = events.Match{SchemaVersion: events.SchemaVersion, Mode: "1v1", Region: "eu", Tier: "gold", CreatedAt: time.Now().UTC()}
	var keys []string
	for i, en := range all {
		s.ids = append(s.ids, en.TicketID)
		keys = append(keys, events.MatchKey(en.TicketID, en.Seq))
		s.match.Tickets = append(s.match.Tickets, events.MatchTicket{TicketID: en.TicketID, Players: en.Players, Team: i, Skill: en.Skill, CreatedAt: t0})
	}
	s.match.MatchID = events.MatchID(keys)
	held := make(chan struct{})
	hold := func(string) { close(held); <-s.resume }
	switch step {
	case "claimed":
		s.a.commits.claimed = hold
	case "checked":
		s.a.commits.checked = hold
	default:
		t.Fatalf("no step %q", step)
	}
	go func() {
		s.outcome <- s.a.commits.commit(t.Context(), s.a.pools["1v1"], s.match, s.ids, all, nil, time.Now())
	}()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatalf("A's commit never reached %s", step)
	}
	return s
}

// finish lets A's commit go on and returns its outcome.
func (s *slowCommit) finish(t *testing.T) commitOutcome {
	t.Helper()
	close(s.resume)
	select {
	case out := <-s.outcome:
		time.Sleep(300 * time.Millisecond) // room for A's results to arrive
		return out
	case <-time.After(10 * time.Second):
		t.Fatal("A's commit did not return")
		return commitOutcome{}
	}
}

// oneStatusPerTicket fails the test if a ticket got two different
// terminal results (say "matched" and "cancelled").
func oneStatusPerTicket(t *testing.T, res map[string][]events.Result) {
	t.Helper()
	for player, rs := range res {
		status := map[string]events.Status{}
		for _, r := range rs {
			if s, seen := status[r.TicketID]; seen && s != r.Status {
				t.Errorf("player %s heard %s and %s (%s) for ticket %s", player, s, r.Status, r.Reason, r.TicketID)
			}
			status[r.TicketID] = r.Status
		}
	}
}

// TestSlowCommitFollowsARecoveredMatch: matcher A formed match M of ta
// (player a) and tb (player b), claimed both and stalls before its check
// that they are still live. Worker B meets M's claims and recovers M: the
// check passes (r1) and B publishes M. Then a's newer ticket tnew is taken
// (w > r1). A wakes and checks (r2 > w): ta is no longer live. M is out
// already, so A must follow it (publish again, ack), not undo it: a must
// not hear "cancelled" for ta after "matched", and the claims of M's
// tickets must stay M's, or tb could be matched a second time.
func TestSlowCommitFollowsARecoveredMatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	s := e.startSlowCommit(t, "claimed")
	if got := s.b.commits.rec.recoverMatch(t.Context(), s.match.MatchID, "ta"); got != recovered {
		t.Fatalf("B's recovery of M: %v, want recovered (published)", got)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return len(allocs()) == 1 }, "B did not publish M")
	e.liveTicket(t, "a", "tnew", s.t0.Add(time.Second)) // a's newer ticket is taken (w > r1)
	out := s.finish(t)

	oneStatusPerTicket(t, results(t, res()))
	// No ticket of M free to be matched again: their claims stay M's.
	for _, id := range s.ids {
		if own, err := e.claims(t).Owner(t.Context(), id); err != nil || own != events.MatchOwner(s.match.MatchID) {
			t.Errorf("ticket %s of published match M is claimed by %q (%v), want M: it may end in two matches", id, own, err)
		}
	}
	if len(out.again) > 0 || len(out.retry) > 0 || out.unpublished != nil {
		t.Errorf("A handed back tickets of published match M: again %d, retry %d, unpublished %v", len(out.again), len(out.retry), out.unpublished != nil)
	}
	for _, m := range matches(t, allocs()) {
		if m.MatchID != s.match.MatchID {
			t.Errorf("unexpected match %s", m.MatchID)
		}
	}
}

// TestSlowCommitFollowsAnUndoneMatch is the other order: A checks M (ta
// and tb live, r2) and stalls before publishing; a's newer ticket tnew is
// taken (w > r2); B recovers M, its check (r1 > w) finds ta stale and it
// undoes M (ta superseded, a told, tb given back). A must follow: not
// publish M, whose tb is free again and ta cancelled.
func TestSlowCommitFollowsAnUndoneMatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	s := e.startSlowCommit(t, "checked")
	e.liveTicket(t, "a", "tnew", s.t0.Add(time.Second))
	if got := s.b.commits.rec.recoverMatch(t.Context(), s.match.MatchID, "ta"); got != released {
		t.Fatalf("B's recovery of M: %v, want released (undone)", got)
	}
	out := s.finish(t)

	if n := len(allocs()); n != 0 {
		t.Errorf("undone match M published %d times", n)
	}
	oneStatusPerTicket(t, results(t, res()))
	if own, err := e.claims(t).Owner(t.Context(), "ta"); err != nil || own != events.OwnerSuperseded {
		t.Errorf("ta claimed by %q (%v), want superseded", own, err)
	}
	if own, err := e.claims(t).Owner(t.Context(), "tb"); err != nil || own != "" {
		t.Errorf("tb claimed by %q (%v), want free to be matched again", own, err)
	}
	if len(out.again) != 1 || out.again[0].TicketID != "tb" || out.unpublished != nil || out.undone != "" {
		t.Errorf("A's outcome: again %v, unpublished %v, undone %q; want tb matched again", out.again, out.unpublished != nil, out.undone)
	}
}

// TestSlowCommitFollowsAReleaseOfItsPartialClaims: A's claims of M look
// like a dead matcher's to B (B reads ta claimed by M, tb not yet, and
// M's record old): B decides M undone and gives ta's claim back. A's
// claim of tb lands and A's check passes. A must not publish M (ta may be
// in another match by now), must give its claims back, and must not form
// M again under the same id, whose decision stands.
func TestSlowCommitFollowsAReleaseOfItsPartialClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	s := e.startSlowCommit(t, "claimed")
	c := e.claims(t)
	owner := events.MatchOwner(s.match.MatchID)
	c.Release(t.Context(), []string{"tb"}, owner) // B reads before A's claim of tb lands
	s.b.commits.rec.now = func() time.Time { return time.Now().Add(2 * staleClaim) }
	if got := s.b.commits.rec.recoverMatch(t.Context(), s.match.MatchID, "ta"); got != released {
		t.Fatalf("B's recovery of M: %v, want released", got)
	}
	if won, _, err := c.Claim(t.Context(), "tb", owner); !won || err != nil { // A's claim of tb lands
		t.Fatalf("claim tb: %v %v", won, err)
	}
	out := s.finish(t)

	if n := len(allocs()); n != 0 {
		t.Errorf("M published %d times after its claims were released", n)
	}
	oneStatusPerTicket(t, results(t, res()))
	for _, id := range s.ids {
		if own, err := c.Owner(t.Context(), id); err != nil || own != "" {
			t.Errorf("ticket %s claimed by %q (%v), want free", id, own, err)
		}
	}
	if len(out.again) != 2 || out.undone != s.match.MatchID {
		t.Fatalf("A's outcome: again %d, undone %q; want both tickets again and M remembered", len(out.again), out.undone)
	}
	s.a.committing++ // as formMatch counted it
	s.a.settleCommit(t.Context(), out, false)
	keys := []string{events.MatchKey("ta", 1), events.MatchKey("tb", 2)}
	if next := s.a.matchID(keys); next == s.match.MatchID || next != events.MatchIDAfter(s.match.MatchID, keys) {
		t.Fatalf("ta and tb matched again are named %s, want a new id after M (%s)", next, s.match.MatchID)
	}
}
