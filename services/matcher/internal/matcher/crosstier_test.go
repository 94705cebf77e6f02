package matcher

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// testClock is a clock a test moves by hand; set makes it a worker's
// (Worker.now), before the worker runs. It starts at the real time and
// stands still until moved, so a ticket's wait (and its windows) grows
// only when the test says.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *testClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *testClock) add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *testClock) set(w *Worker)       { w.now = c.now }

// published is the matches of msgs, each once: a match published again
// (a commit's retry, a recovery, or two shards that formed it alike) is
// one match, stored once by its message id.
func published(t *testing.T, msgs []*nats.Msg) []events.Match {
	t.Helper()
	var out []events.Match
	for _, m := range matches(t, msgs) {
		if !slices.ContainsFunc(out, func(o events.Match) bool { return o.MatchID == m.MatchID }) {
			out = append(out, m)
		}
	}
	return out
}

// homeTier is the default tier of skill: its own shard's.
func homeTier(skill int) string {
	t, _ := events.DefaultTiers.For(skill)
	return t
}

// TestTierNeighboursMeetOnceTheirWindowsWiden: 1199 (bronze) and 1200
// (silver) in one region, with windows that start at 0. Tiers used to be
// walls: they never met. Each is offered once to the other's shard when
// its window crosses its tier's bound, and they are matched once; the
// visitor's match ticket names its own tier, where a requeue takes it.
func TestTierNeighboursMeetOnceTheirWindowsWiden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clk := newTestClock()
	w := e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m",
		"skill_window":{"initial":0,"per_second":10,"max":1000}}]`)}, clk.set)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	offers := testkit.Collect(t, e.nc, e.subj.AllOffers())
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	e.pub(t, e.subj.Ticket("eu", "bronze"), `{"ticket_id":"lo","player_id":"lo","skill":1199}`)
	e.pub(t, e.subj.Ticket("eu", "silver"), `{"ticket_id":"hi","player_id":"hi","skill":1200}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return w.waiting() == 2 }, "tickets not pooled")
	time.Sleep(300 * time.Millisecond) // sweeps, with windows of 0
	if len(allocs()) != 0 || len(offers()) != 0 {
		t.Fatalf("with windows of 0: %d matches, %d offers", len(allocs()), len(offers()))
	}

	clk.add(2 * time.Second) // windows of about 20: each crosses its tier's bound
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 1 }, "1199 and 1200 never met")
	m := published(t, allocs())[0]
	if m.Region != "eu" || len(m.Tickets) != 2 || m.Tickets[0].Team == m.Tickets[1].Team {
		t.Fatalf("match %+v", m)
	}
	for _, mt := range m.Tickets {
		want := homeTier(mt.Skill)
		if want == m.Tier {
			want = "" // in its own shard
		}
		if mt.Tier != want {
			t.Errorf("ticket %s (skill %d) in a %s match: tier %q, want %q", mt.TicketID, mt.Skill, m.Tier, mt.Tier, want)
		}
	}
	// The copy in the shard that did not form the match waits until it
	// meets its claim, taken: at its expiry here. It is dropped then,
	// its players not told "expired".
	clk.add(time.Minute)
	testkit.Eventually(t, 10*time.Second, func() bool {
		return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 && testkit.StreamMsgs(t, e.js, e.subj.OffersStream()) == 0
	}, "tickets or visitors left")
	told := results(t, res())
	for _, p := range []string{"lo", "hi"} {
		// Told once, or again alike (a publish repeated, stored once).
		for _, r := range told[p] {
			if r.Status != events.StatusMatched || r.MatchID != m.MatchID {
				t.Errorf("%s told %+v, want matched in %s", p, r, m.MatchID)
			}
		}
		if len(told[p]) == 0 {
			t.Errorf("%s not told", p)
		}
	}
	time.Sleep(300 * time.Millisecond) // more sweeps: nothing is offered or matched again
	if n := len(published(t, allocs())); n != 1 {
		t.Fatalf("%d matches, want 1", n)
	}
	want := map[string]string{"lo": e.subj.Offer("eu", "silver"), "hi": e.subj.Offer("eu", "bronze")}
	seen := map[string]bool{}
	for _, o := range offers() {
		tk, err := events.DecodeTicket(o.Data)
		if err != nil {
			t.Fatal(err)
		}
		if o.Subject != want[tk.TicketID] {
			t.Errorf("ticket %s offered on %s, want %s", tk.TicketID, o.Subject, want[tk.TicketID])
		}
		seen[o.Header.Get(jetstream.MsgIDHeader)] = true
	}
	if len(seen) > 2 {
		t.Errorf("offers %v: each ticket offered more than once", seen)
	}
}

// TestCrossTierOffersNeverMatchATicketTwice is the race: many tickets
// near the bronze/silver bound, in two shards held by two workers, all
// widening at the same moment, so both shards offer every ticket to the
// other and match home tickets and visitors side by side. Every ticket
// ends in exactly one outcome (oneOutcomeEach) and is offered once.
func TestCrossTierOffersNeverMatchATicketTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clk := newTestClock()
	// The rendezvous hash gives eu.bronze to w1 and eu.silver to w0.
	ws := e.twoTierWorkers(t, clk)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	offers := testkit.Collect(t, e.nc, e.subj.AllOffers())

	// Distinct skills, 100 on each side of the bound, in random order:
	// with windows of 0 nothing meets yet.
	const n = 200
	ids := e.pubAroundBound(t, ws, n, 11)
	if len(offers()) != 0 || len(allocs()) != 0 {
		t.Fatalf("windows of 0: %d offers, %d matches", len(offers()), len(allocs()))
	}
	clk.add(15 * time.Second) // windows of 300: every ticket fits every other, across the bound
	testkit.Eventually(t, 30*time.Second, func() bool { return inMatches(t, allocs) >= n-1 },
		"tickets left unmatched: %d in matches, %d and %d waiting", inMatches(t, allocs), ws[0].waiting(), ws[1].waiting())
	clk.add(30 * time.Second) // past the max wait: an odd one out expires, copies left go
	oneOutcomeEach(t, e, ids, allocs, res)

	offered := map[string][]string{}
	for _, o := range offers() {
		tk, err := events.DecodeTicket(o.Data)
		if err != nil {
			t.Fatal(err)
		}
		if mid := o.Header.Get(jetstream.MsgIDHeader); !slices.Contains(offered[tk.TicketID], mid) {
			offered[tk.TicketID] = append(offered[tk.TicketID], mid)
		}
	}
	for id, o := range offered {
		if len(o) > 1 {
			t.Errorf("ticket %s offered %d times: %v", id, len(o), o)
		}
	}
	t.Logf("%d tickets: %d in matches (%d matches), %d offered", n, inMatches(t, allocs), len(published(t, allocs())), len(offered))
	if len(offered) == 0 {
		t.Fatal("nothing was offered: the race was not run")
	}
}

// inMatches counts the tickets of the published matches.
func inMatches(t *testing.T, allocs func() []*nats.Msg) int {
	k := 0
	for _, m := range published(t, allocs()) {
		k += len(m.Tickets)
	}
	return k
}

// oneOutcomeEach waits until each of ids (ticket i of player p<i>) has an
// outcome and no copy of any is left in a stream, then checks that the
// outcome is one: in one published match (its claim that match's, its
// players told "matched" in that match only) or expired (its claim
// expired), never both, never in two matches.
func oneOutcomeEach(t *testing.T, e *env, ids []string, allocs, res func() []*nats.Msg) {
	t.Helper()
	outcome := func() (map[string][]string, map[string]bool) {
		inMatch := map[string][]string{}
		for _, m := range published(t, allocs()) {
			for _, tk := range m.Tickets {
				inMatch[tk.TicketID] = append(inMatch[tk.TicketID], m.MatchID)
			}
		}
		expired := map[string]bool{}
		for _, rs := range results(t, res()) {
			for _, r := range rs {
				expired[r.TicketID] = expired[r.TicketID] || r.Status == events.StatusExpired
			}
		}
		return inMatch, expired
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		inMatch, expired := outcome()
		for _, id := range ids {
			if len(inMatch[id]) == 0 && !expired[id] {
				return false
			}
		}
		return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 && testkit.StreamMsgs(t, e.js, e.subj.OffersStream()) == 0
	}, "tickets without an outcome, or left in a stream")
	inMatch, expired := outcome()
	claims := e.claims(t)
	told := results(t, res())
	for i, id := range ids {
		ms := inMatch[id]
		if len(ms) > 1 || len(ms) == 1 && expired[id] {
			t.Errorf("ticket %s: in matches %v, expired %v", id, ms, expired[id])
			continue
		}
		wantOwner := events.OwnerExpired
		if len(ms) == 1 {
			wantOwner = events.MatchOwner(ms[0])
		}
		if owner, err := claims.Owner(t.Context(), id); err != nil || owner != wantOwner {
			t.Errorf("ticket %s claimed by %q (%v), want %q", id, owner, err, wantOwner)
		}
		for _, r := range told[fmt.Sprintf("p%03d", i)] {
			if r.Status == events.StatusMatched && (len(ms) == 0 || r.MatchID != ms[0]) {
				t.Errorf("player of %s told matched in %s, published %v", id, r.MatchID, ms)
			}
		}
	}
}

// TestCancelNoticeDropsVisitorCopies: a cancel notice names the ticket's
// own shard; the worker hands it to all its runners, so the ticket's
// visitor copy in the neighbouring tier goes at once too, not at its
// expiry.
func TestCancelNoticeDropsVisitorCopies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clk := newTestClock()
	w := e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m",
		"skill_window":{"initial":0,"per_second":10,"max":1000}}]`)}, clk.set)
	e.pub(t, e.subj.Ticket("eu", "bronze"), `{"ticket_id":"gone","player_id":"quitter","skill":1199}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return w.waiting() == 1 }, "ticket not pooled")
	clk.add(2 * time.Second) // its window crosses into silver
	testkit.Eventually(t, 10*time.Second, func() bool {
		return w.waiting() == 2 && testkit.StreamMsgs(t, e.js, e.subj.OffersStream()) == 1
	}, "no visitor copy in silver")
	// What the frontend's DELETE does: claim, then notify the own shard.
	if won, _, err := e.claims(t).Claim(t.Context(), "gone", events.OwnerCancelled); !won || err != nil {
		t.Fatalf("cancel claim: %v %v", won, err)
	}
	data, _ := json.Marshal(events.Cancel{SchemaVersion: 1, TicketID: "gone", Region: "eu", Tier: "bronze", Mode: "1v1"})
	if err := e.nc.Publish(e.subj.Cancel("eu", "bronze"), data); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		return w.waiting() == 0 && testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 &&
			testkit.StreamMsgs(t, e.js, e.subj.OffersStream()) == 0
	}, "copies left: %d waiting, %d visitors", w.waiting(), testkit.StreamMsgs(t, e.js, e.subj.OffersStream()))
}

// TestClaimGivenBackBeforeReadIsRetried: two shards' matches of one
// ticket (a visitor's and its home's) contend for its claim; one finds
// the claim taken, and by the time it reads the holder, the other gave it
// back (it lost another ticket). The loser sees the ticket lost to no
// one: that is not "decided elsewhere", and the ticket must wait and be
// tried again, not be acked and lost.
func TestClaimGivenBackBeforeReadIsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newRunner(e.boundWorker(t), events.Shard{Region: "eu", Tier: "silver"})
	en := &pool.Entry{TicketID: "tc", Players: []string{"c"}, Skill: 1200, Created: time.Now().UnixNano(), Seq: 1}
	out := r.commits.resolveLost(t.Context(), r.log, events.Match{Region: "eu", Tier: "silver", Mode: "1v1"}, []*pool.Entry{en}, map[string]string{"tc": ""}, commitOutcome{})
	if len(out.retry) != 1 || out.retry[0] != en {
		t.Fatalf("outcome %+v: the ticket is not retried", out)
	}
}

// TestVisitorIsJudgedByItsAttributes: a visitor carries its attributes
// to the neighbouring tier, where the rules judge it as at home: a pc
// ticket of bronze meets the pc ticket of silver, not the xbox one, and
// the match says so.
func TestVisitorIsJudgedByItsAttributes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.startWorker(t, Config{RulesFile: writeRules(t, "", attrRules)})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	e.pub(t, e.subj.Ticket("eu", "silver"), `{"ticket_id":"xb","player_id":"xb","skill":1250,"attributes":{"strings":{"platform":"xbox"}}}`)
	e.pub(t, e.subj.Ticket("eu", "bronze"), `{"ticket_id":"lo","player_id":"lo","skill":1199,"attributes":{"strings":{"platform":"pc"}}}`)
	// Windows of 100: each is offered to the other's shard at once.
	testkit.Eventually(t, 10*time.Second, func() bool { return w.waiting() == 4 }, "want 2 tickets and 2 visitors, %d waiting", w.waiting())
	time.Sleep(200 * time.Millisecond)
	if n := len(allocs()); n != 0 {
		t.Fatalf("pc and xbox matched: %+v", matches(t, allocs()))
	}
	e.pub(t, e.subj.Ticket("eu", "silver"), `{"ticket_id":"pc","player_id":"pc","skill":1260,"attributes":{"strings":{"platform":"pc"}}}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 1 }, "the pc tickets never met")
	time.Sleep(200 * time.Millisecond)
	ms := published(t, allocs())
	if len(ms) != 1 {
		t.Fatalf("%d matches: %+v", len(ms), ms)
	}
	for _, mt := range ms[0].Tickets {
		home := homeTier(mt.Skill)
		if home == ms[0].Tier {
			home = ""
		}
		if mt.TicketID == "xb" || mt.Attributes == nil || mt.Attributes.Strings["platform"] != "pc" || mt.Tier != home {
			t.Errorf("in a %s match: %+v (attributes %+v)", ms[0].Tier, mt, mt.Attributes)
		}
	}
}

// twoTierWorkers starts two workers of eu's bronze and silver shards, 1v1
// with a skill window of 0 that widens by 20 a second on clk, and waits
// until each holds a shard.
func (e *env) twoTierWorkers(t *testing.T, clk *testClock) []*worker {
	t.Helper()
	mf := modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"20s","skill_window":{"initial":0,"per_second":20,"max":1000}}]`)
	cfg := func(id string) Config {
		return Config{WorkerID: id, Regions: events.Regions{"eu"}, Tiers: events.DefaultTiers[:2], RulesFile: mf}
	}
	ws := []*worker{e.startWorker(t, cfg("w0"), clk.set), e.startWorker(t, cfg("w1"), clk.set)}
	testkit.Eventually(t, 15*time.Second, func() bool { return ws[0].held() == 1 && ws[1].held() == 1 },
		"want a shard each, held %d and %d", ws[0].held(), ws[1].held())
	return ws
}

// pubAroundBound publishes n tickets ("t000"...) of distinct skills from
// 1100, n/2 on each side of the bronze-silver bound, in an order drawn
// from seed, each on its tier's subject, and waits until each of the two
// workers ws holds its half. It returns their ids.
func (e *env) pubAroundBound(t *testing.T, ws []*worker, n int, seed uint64) []string {
	t.Helper()
	skills := rand.New(rand.NewPCG(seed, seed+1)).Perm(n)
	ids := make([]string, n)
	for i := range ids {
		skill := 1100 + skills[i]
		ids[i] = fmt.Sprintf("t%03d", i)
		e.pub(t, e.subj.Ticket("eu", homeTier(skill)), fmt.Sprintf(`{"ticket_id":%q,"player_id":"p%03d","skill":%d}`, ids[i], i, skill))
	}
	testkit.Eventually(t, 20*time.Second, func() bool { return ws[0].waiting() == n/2 && ws[1].waiting() == n/2 }, "tickets not taken in")
	return ids
}
