package matcher

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/matchfn"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// A function that answers every call with proposals that are all
// refused (a studio's function naming players where tickets belong)
// misbehaves: its mode falls back to the built-in rules, which match
// the tickets, where it formed no match and every ticket expired.
func TestHostileFunctionProposingOnlyRefusedMatchesFallsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.serveFunction(t, "players", func(req matchfn.Request) (matchfn.Reply, error) {
		var rep matchfn.Reply
		for i := 0; i+1 < len(req.Candidates); i += 2 {
			rep.Matches = append(rep.Matches, matchfn.Proposal{Teams: [][]string{req.Candidates[i].Players, req.Candidates[i+1].Players}})
		}
		return rep, nil
	})
	w := e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m",
		"match_function":{"service":"players","timeout":"1s","on_failure":"fallback"}}]`)})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"a","player_id":"alice","skill":1800}`)
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"b","player_id":"bob","skill":1805}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(e.oneMatchEach(t, matches(t, allocs()))) == 2 },
		"the built-in rules did not stand in for a function whose every proposal is refused")
	if got := testutil.ToFloat64(w.w.met.proposals.WithLabelValues(string(matchfn.ReasonUnknownTicket))); got < 1 {
		t.Fatalf("%v unknown-ticket proposals counted", got)
	}
}

// A function shown only the oldest tickets, which it will not match (too
// far apart), still sees the tickets behind them in turn: two that fit
// each other are matched long before the oldest expire. (With
// max_candidates 4, half the oldest and two in turn.)
func TestAFunctionSeesPastTheOldest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.serveFunction(t, "near", func(req matchfn.Request) (matchfn.Reply, error) {
		var rep matchfn.Reply
		for i, a := range req.Candidates {
			for _, b := range req.Candidates[i+1:] {
				if d := a.Skill - b.Skill; d >= -10 && d <= 10 {
					rep.Matches = append(rep.Matches, matchfn.Proposal{Teams: [][]string{{a.TicketID}, {b.TicketID}}})
					return rep, nil
				}
			}
		}
		return rep, nil
	})
	e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m",
		"skill_window":{"initial":500,"per_second":0,"max":500},
		"match_function":{"service":"near","timeout":"1s","on_failure":"wait","max_candidates":4}}]`)})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	for i, id := range []string{"a", "b", "e", "f"} { // 100 apart: none fits another
		e.pub(t, e.subj.Ticket("eu", "gold"), fmt.Sprintf(`{"ticket_id":%q,"player_id":"p%s","skill":%d}`, id, id, 1650+100*i))
	}
	time.Sleep(500 * time.Millisecond) // they are the oldest, as many as a call takes
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"c","player_id":"carol","skill":1800}`)
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"d","player_id":"dave","skill":1801}`)
	testkit.Eventually(t, 15*time.Second, func() bool { return teamsOf(e.oneMatchEach(t, matches(t, allocs()))["c"]) == "c|d" },
		"c and d, behind two tickets the function will not match, never shown to it")
}

// A reply of many bad proposals is logged a few at a time, with a count
// of the rest (the metric counts each): a reply may hold ten thousand.
func TestManyBadProposalsAreLoggedOnce(t *testing.T) {
	t.Parallel()
	set, err := rules.Parse([]byte(`{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m",
		"match_function":{"service":"f","on_failure":"wait"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := set.Mode("1v1")
	now := time.Unix(1_800_000_000, 0)
	var logs strings.Builder
	r := &runner{log: slog.New(slog.NewTextHandler(&logs, nil)), met: newMetrics(prometheus.NewRegistry()),
		now: func() time.Time { return now }, functions: newFunctions(), pools: map[string]*pool.Pool{}}
	p := pool.New(m)
	r.pools[m.Name] = p
	r.functions.byMode[m.Name] = &function{calling: true}
	out := functionReply{mode: m.Name, service: "f", p: p, sent: map[string]*pool.Entry{},
		req: matchfn.Request{Mode: matchfn.Mode{Name: m.Name, Teams: 2, TeamSize: 1}, Region: "eu", Tier: "gold"}}
	for i := range 1000 {
		out.reply.Matches = append(out.reply.Matches, matchfn.Proposal{Teams: [][]string{{fmt.Sprintf("x%d", i)}, {"y"}}})
	}
	r.settleCall(t.Context(), out)
	if n := strings.Count(logs.String(), "\n"); n > loggedProposals+2 {
		t.Fatalf("%d log lines for one reply:\n%.2000s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "dropped=1000") {
		t.Fatalf("no count of the dropped proposals: %.2000s", logs.String())
	}
	if got := testutil.ToFloat64(r.met.proposals.WithLabelValues(string(matchfn.ReasonUnknownTicket))); got != 1000 {
		t.Fatalf("%v counted", got)
	}
}

// TestATurnEverySecondInABusyPool: in a pool whose oldest tickets
// change twice a second, the calls that follow each change still leave
// a turn round the pool every second. The turn was tied to the last call
// of any kind, so a busy pool never had one, and a function that would
// not match the oldest never saw the tickets behind them until they were
// among the oldest. In a still pool, a call a second, no more.
func TestATurnEverySecondInABusyPool(t *testing.T) {
	t.Parallel()
	set, err := rules.Parse([]byte(`{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m",
		"match_function":{"service":"f","max_candidates":8}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := set.Mode("1v1")
	start := time.Unix(1_800_000_000, 0)
	r := &runner{functions: newFunctions()}
	p := pool.New(m)
	for i := range 40 {
		p.Add(&pool.Entry{TicketID: fmt.Sprintf("t%02d", i), Players: []string{fmt.Sprintf("p%02d", i)}, Skill: 1000 + 10*i, Created: start.UnixNano(), Seq: 1})
	}
	h := &function{}
	turns, gone := 0, 0
	for tick := range 16 { // four seconds of sweeps, an oldest ticket leaving at every other
		now := start.Add(time.Duration(tick) * 250 * time.Millisecond)
		oldest := p.Oldest(8)
		entries := r.candidates(p, h, now)
		if entries != nil && slices.ContainsFunc(entries, func(e *pool.Entry) bool { return !slices.Contains(oldest, e) }) {
			turns++
		}
		if tick%2 == 1 {
			p.Remove(fmt.Sprintf("t%02d", gone))
			gone++
		}
	}
	if turns < 3 {
		t.Fatalf("%d calls in four seconds showed tickets past the oldest, want one a second", turns)
	}

	// A still pool: a call when the turn is due, none between.
	calls := 0
	for tick := range 8 {
		if r.candidates(p, h, start.Add(10*time.Second+time.Duration(tick)*250*time.Millisecond)) != nil {
			calls++
		}
	}
	if calls != 2 {
		t.Fatalf("%d calls in two seconds of a still pool, want 2", calls)
	}
}

// TestARaceSaysNothingOfTheFunction: while the built-in rules stand in
// for a failing function, a reply whose proposals are refused only
// because those rules matched their tickets meanwhile neither clears
// the failure (it flapped: the fallback paused for a call) nor is a
// fault; a reply proposing nothing clears it, as one accepted does
// (TestMatchFunctionGarbageFallsBack).
func TestARaceSaysNothingOfTheFunction(t *testing.T) {
	t.Parallel()
	set, err := rules.Parse([]byte(`{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m",
		"match_function":{"service":"f","on_failure":"fallback"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := set.Mode("1v1")
	now := time.Unix(1_800_000_000, 0)
	r := &runner{log: slog.New(slog.NewTextHandler(testLog(), nil)), met: newMetrics(prometheus.NewRegistry()),
		now: func() time.Time { return now }, functions: newFunctions(), pools: map[string]*pool.Pool{}}
	p := pool.New(m)
	r.pools[m.Name] = p
	h := &function{calling: true, failing: true}
	r.functions.byMode[m.Name] = h
	sent := map[string]*pool.Entry{}
	req := matchfn.Request{Mode: matchfn.Mode{Name: m.Name, Teams: 2, TeamSize: 1}, Region: "eu", Tier: "gold"}
	for _, id := range []string{"a", "b", "c", "d"} {
		e := &pool.Entry{TicketID: id, Players: []string{"p" + id}, Skill: 1800, Created: now.Add(-time.Second).UnixNano(), Seq: 1}
		p.Add(e)
		sent[id] = e
		req.Candidates = append(req.Candidates, candidateOf(e, now))
	}
	p.Remove("a") // matched by the built-in rules during the call
	p.Remove("b")
	reply := func(pairs ...[2]string) functionReply {
		out := functionReply{mode: m.Name, service: "f", p: p, sent: sent, req: req}
		for _, pr := range pairs {
			out.reply.Matches = append(out.reply.Matches, matchfn.Proposal{Teams: [][]string{{pr[0]}, {pr[1]}}})
		}
		return out
	}
	r.settleCall(t.Context(), reply([2]string{"a", "b"}))
	if !h.failing {
		t.Fatal("a reply refused only for tickets matched meanwhile cleared the failure")
	}
	h.calling = true
	r.settleCall(t.Context(), reply())
	if h.failing {
		t.Fatal("a reply proposing nothing (the function answers) did not clear the failure")
	}
}
