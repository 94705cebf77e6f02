package matcher

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// shortDuplicates makes the duplicate window of the allocations and
// results streams d, so that a test sees, past it, what a publish
// repeated more than events.DuplicateWindow later would store.
func (e *env) shortDuplicates(t *testing.T, d time.Duration) {
	t.Helper()
	for _, name := range []string{e.subj.AllocationsStream(), e.subj.ResultsStream()} {
		st, err := e.js.Stream(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		cfg.Duplicates = d
		if _, err := e.js.UpdateStream(t.Context(), cfg); err != nil {
			t.Fatalf("update %s: %v", name, err)
		}
	}
}

// stored is every message stream holds now: what its consumers get, each
// publish stored once per duplicate window (a core subscriber sees every
// publish, deduplicated or not).
func stored(t *testing.T, e *env, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	st, err := e.js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// toldMatched counts, by player, the "matched" results stored, and the
// matches stored: each player is to be told once, each match stored once.
func toldMatched(t *testing.T, e *env) (map[string]int, map[string]int) {
	t.Helper()
	told := map[string]int{}
	for _, m := range stored(t, e, e.subj.ResultsStream()) {
		r, err := events.DecodeResult(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == events.StatusMatched {
			told[r.PlayerID]++
		}
	}
	ms := map[string]int{}
	for _, m := range stored(t, e, e.subj.AllocationsStream()) {
		mt, err := events.DecodeMatch(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		ms[mt.MatchID]++
	}
	return told, ms
}

// dupWindow is the tests' duplicate window: short enough to wait out,
// long enough that two sends of one match meant to be stored once (a
// commit's and a recovery's at the same moment, before either records
// the match sent) fall in it, even under the race detector on a busy
// machine. (500ms was not, once.)
const dupWindow = 2 * time.Second

// TestRecoveryDoesNotPublishAPublishedMatchAgain: matcher A formed and
// published match M. Later than the duplicate window, worker B meets M's
// claims (a copy of one of its tickets, in another shard) and recovers M:
// M was sent, its results stored, so B must not publish it again. It used
// to: the stream, no longer remembering M's message ids, stored M and its
// "matched" results a second time, and the players heard them twice.
func TestRecoveryDoesNotPublishAPublishedMatchAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.shortDuplicates(t, dupWindow)
	t0 := time.Now().UTC().Add(-2 * time.Second)
	e.liveTicket(t, "a", "ta", t0)
	e.liveTicket(t, "b", "tb", t0)
	shard := events.Shard{Region: "eu", Tier: "gold"}
	a, b := newRunner(e.boundWorker(t), shard), newRunner(e.boundWorker(t), shard)
	all := []*pool.Entry{
		{TicketID: "ta", Players: []string{"a"}, Skill: 1650, Created: t0.UnixNano(), Seq: 1},
		{TicketID: "tb", Players: []string{"b"}, Skill: 1650, Created: t0.UnixNano(), Seq: 2},
	}
	m := events.Match{Mode: "1v1", Region: "eu", Tier: "gold", CreatedAt: time.Now().UTC()}
	var keys []string
	for i, en := range all {
		keys = append(keys, events.MatchKey(en.TicketID, en.Seq))
		m.Tickets = append(m.Tickets, matchTicketOf(en, i))
	}
	m.MatchID = events.MatchID(keys)
	out := a.commits.commit(t.Context(), a.pools["1v1"], m, []string{"ta", "tb"}, all, nil, time.Now())
	if out.unpublished != nil || len(out.retry)+len(out.again) > 0 {
		t.Fatalf("A's commit of M: %+v", out)
	}
	time.Sleep(2 * dupWindow) // the streams forget M's message ids
	if got := b.commits.rec.recoverMatch(t.Context(), m.MatchID, "ta"); got != recovered {
		t.Fatalf("B's recovery of M: %v, want recovered", got)
	}
	told, ms := toldMatched(t, e)
	if ms[m.MatchID] != 1 || len(ms) != 1 {
		t.Errorf("matches stored %v, want M once", ms)
	}
	for _, p := range []string{"a", "b"} {
		if told[p] != 1 {
			t.Errorf("player %s told matched %d times, want once", p, told[p])
		}
	}
}

// TestSlowCommitDoesNotPublishARecoveredMatchAgain: matcher A claimed
// match M's tickets and stalls, longer than the duplicate window, before
// deciding it; worker B recovers M meanwhile and publishes it. A wakes,
// finds M decided (by B) and follows: M was sent already, so A must not
// publish it again, which the streams would store and the players hear
// a second time.
func TestSlowCommitDoesNotPublishARecoveredMatchAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.shortDuplicates(t, dupWindow)
	s := e.startSlowCommit(t, "claimed")
	if got := s.b.commits.rec.recoverMatch(t.Context(), s.match.MatchID, "ta"); got != recovered {
		t.Fatalf("B's recovery of M: %v, want recovered (published)", got)
	}
	time.Sleep(2 * dupWindow)
	if out := s.finish(t); out.unpublished != nil || len(out.retry)+len(out.again) > 0 {
		t.Fatalf("A's outcome: %+v", out)
	}
	told, ms := toldMatched(t, e)
	if ms[s.match.MatchID] != 1 || len(ms) != 1 {
		t.Errorf("matches stored %v, want M once", ms)
	}
	for _, p := range []string{"a", "b"} {
		if told[p] != 1 {
			t.Errorf("player %s told matched %d times, want once", p, told[p])
		}
	}
}

// neighbourRules: 1v1 with a skill window from 0, so that 1199 (bronze)
// and 1200 (silver) are offered to each other's shard once it widens.
const neighbourRules = `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m",
	"skill_window":{"initial":0,"per_second":10,"max":1000}}]`

// matchNeighbours pools 1199 (ticket lo) in bronze of eu and widens its
// window until lo is offered to silver; then partner comes, waiting as
// long, to the shard subject names, and is matched with lo there at
// once: with lo's visitor copy in silver (lo's home message is left in
// bronze), or with lo at home in bronze (lo's visitor is left in silver).
func matchNeighbours(t *testing.T, e *env, w *worker, clk *testClock, tier string, partner int) events.Match {
	t.Helper()
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	e.pub(t, e.subj.Ticket("eu", "bronze"), `{"ticket_id":"lo","player_id":"lo","skill":1199}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return w.waiting() == 1 }, "lo not pooled")
	clk.add(2 * time.Second) // a window of 20 crosses into silver
	testkit.Eventually(t, 10*time.Second, func() bool {
		return w.waiting() == 2 && testkit.StreamMsgs(t, e.js, e.subj.OffersStream()) == 1
	}, "lo not offered to silver")
	// The partner waited as long: its window fits lo at once, before a
	// sweep offers it anywhere.
	e.pub(t, e.subj.Ticket("eu", tier), fmt.Sprintf(`{"ticket_id":"partner","player_id":"partner","skill":%d,"created_at":%q}`,
		partner, clk.now().Add(-2*time.Second).UTC().Format(time.RFC3339Nano)))
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 1 }, "lo and its partner never met")
	m := published(t, allocs())[0]
	if m.Tier != tier {
		t.Fatalf("matched in %s, want %s", m.Tier, tier)
	}
	return m
}

// TestMatchedNoticeDropsCopies: once lo is matched in one shard, its
// copy in the other goes at once (a matched notice), its players told
// nothing more: its home message when its visitor copy was matched, its
// visitor copy when it was matched at home. Without the notice the copy
// waited, counted in its pool, until a commit or its expiry met its
// claim.
func TestMatchedNoticeDropsCopies(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		tier    string
		partner int
	}{{"visitor matched, home message dropped", "silver", 1200}, {"matched at home, visitor dropped", "bronze", 1190}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			clk := newTestClock()
			w := e.startWorker(t, Config{RulesFile: modesFile(t, neighbourRules)}, clk.set)
			m := matchNeighbours(t, e, w, clk, c.tier, c.partner)
			testkit.Eventually(t, 10*time.Second, func() bool {
				return w.waiting() == 0 && testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 &&
					testkit.StreamMsgs(t, e.js, e.subj.OffersStream()) == 0
			}, "copy left: %d waiting, %d tickets, %d visitors", w.waiting(), testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()),
				testkit.StreamMsgs(t, e.js, e.subj.OffersStream()))
			for _, id := range []string{"lo", "partner"} {
				if own, err := e.claims(t).Owner(t.Context(), id); err != nil || own != events.MatchOwner(m.MatchID) {
					t.Errorf("ticket %s claimed by %q (%v), want its match", id, own, err)
				}
			}
		})
	}
}

// TestLateCopyDoesNotTellPlayersTwice is the whole story: lo's visitor
// copy is matched in silver, lo's home message waits in bronze and meets
// its claim (at its expiry) later than the duplicate window, and
// recovers the match. Each player is
// told "matched" once and the match is stored once.
func TestLateCopyDoesNotTellPlayersTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.shortDuplicates(t, dupWindow)
	clk := newTestClock()
	w := e.startWorker(t, Config{RulesFile: modesFile(t, neighbourRules)}, clk.set)
	m := matchNeighbours(t, e, w, clk, "silver", 1200) // lo's home message is left in bronze
	time.Sleep(2 * dupWindow)
	clk.add(time.Minute) // past the max wait: a copy left meets its claim
	testkit.Eventually(t, 10*time.Second, func() bool {
		return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 && testkit.StreamMsgs(t, e.js, e.subj.OffersStream()) == 0
	}, "tickets or visitors left")
	time.Sleep(300 * time.Millisecond) // sweeps: a repeat would be stored by now
	told, ms := toldMatched(t, e)
	if ms[m.MatchID] != 1 || len(ms) != 1 {
		t.Errorf("matches stored %v, want %s once", ms, m.MatchID)
	}
	for _, p := range []string{"lo", "partner"} {
		if told[p] != 1 {
			t.Errorf("player %s told matched %d times, want once", p, told[p])
		}
	}
}

// TestMatchedNoticeOfAnotherMatchKeepsTheTicket: a matched notice names a
// match that does not hold the ticket's claim (the ticket was queued
// again after that match, or the notice is stale): the ticket is not
// dropped, and is matched when a partner comes.
func TestMatchedNoticeOfAnotherMatchKeepsTheTicket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// One shard: nothing is offered anywhere.
	w := e.startWorker(t, Config{Regions: events.Regions{"eu"}, Tiers: events.DefaultTiers[2:3]})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"stay","player_id":"stay","skill":1700}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return w.waiting() == 1 }, "ticket not pooled")
	if err := events.NewPublisher(e.js, e.subj).MatchedNotice(t.Context(), "eu", "gold", events.MatchedNotice{TicketID: "stay", MatchID: "m-other", HomeRegion: "eu", HomeTier: "gold"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the notice is handled, its claim read
	if n := w.waiting(); n != 1 {
		t.Fatalf("%d waiting: the ticket was dropped for a match that does not hold it", n)
	}
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"partner","player_id":"partner","skill":1710}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 1 }, "the kept ticket was never matched")
}

// TestTwoShardsDropEachOthersCopies is the race: two workers, a shard
// each (bronze and silver), every ticket near the bound offered to the
// other shard and matched at home or as a visitor side by side. Every
// copy of a matched ticket goes before any expiry, each ticket ends in
// one outcome, and each player is told "matched" once, however late the
// copies meet their claims.
func TestTwoShardsDropEachOthersCopies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.shortDuplicates(t, dupWindow)
	clk := newTestClock()
	ws := e.twoTierWorkers(t, clk)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	const n = 200
	ids := e.pubAroundBound(t, ws, n, 21)
	clk.add(15 * time.Second) // windows of 300: every ticket is offered, and fits every other
	testkit.Eventually(t, 30*time.Second, func() bool { return inMatches(t, allocs) >= n-1 },
		"tickets left unmatched: %d in matches", inMatches(t, allocs))
	// Before any expiry: only the unmatched keep their home message and
	// at most one visitor copy; no matched ticket's copy is left.
	testkit.Eventually(t, 10*time.Second, func() bool {
		left := uint64(n - inMatches(t, allocs))
		return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == left && testkit.StreamMsgs(t, e.js, e.subj.OffersStream()) <= left &&
			ws[0].waiting()+ws[1].waiting() <= int(2*left)
	}, "copies of matched tickets left: %d tickets, %d visitors, %d waiting, %d unmatched",
		testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()), testkit.StreamMsgs(t, e.js, e.subj.OffersStream()),
		ws[0].waiting()+ws[1].waiting(), n-inMatches(t, allocs))
	time.Sleep(2 * dupWindow)
	clk.add(30 * time.Second) // past the max wait: the odd one out expires, anything left meets its claim
	oneOutcomeEach(t, e, ids, allocs, res)
	time.Sleep(300 * time.Millisecond) // sweeps: a repeat would be stored by now
	told, ms := toldMatched(t, e)
	for id, k := range ms {
		if k != 1 {
			t.Errorf("match %s stored %d times", id, k)
		}
	}
	for _, m := range published(t, allocs()) {
		for _, p := range m.Players() {
			if told[p] != 1 {
				t.Errorf("player %s told matched %d times, want once", p, told[p])
			}
		}
	}
}
