package matcher

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/examples/matchfunction/closest"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/matchfn"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// serveFunction serves f as the match function name, on a connection of
// its own, until the test ends.
func (e *env) serveFunction(t *testing.T, name string, f matchfn.Func) {
	t.Helper()
	svc, err := matchfn.Serve(testkit.Connect(t, e.srv), name, f, matchfn.WithSubjects(e.subj),
		matchfn.WithLogger(slog.New(slog.NewTextHandler(testLog(), nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
}

// oneMatchEach fails the test if a ticket is in two of the published
// matches (a match published twice, by a retry, is one match), or if a
// matched ticket's claim is not its match's; it returns the matches by
// ticket.
func (e *env) oneMatchEach(t *testing.T, ms []events.Match) map[string]events.Match {
	t.Helper()
	byTicket := map[string]events.Match{}
	for _, m := range ms {
		for _, tk := range m.Tickets {
			if other, ok := byTicket[tk.TicketID]; ok && other.MatchID != m.MatchID {
				t.Fatalf("ticket %s is in matches %s and %s", tk.TicketID, other.MatchID, m.MatchID)
			}
			byTicket[tk.TicketID] = m
		}
	}
	claims := e.claims(t)
	for id, m := range byTicket {
		owner, err := claims.Owner(t.Context(), id)
		if err != nil || owner != events.MatchOwner(m.MatchID) {
			t.Fatalf("ticket %s of match %s is claimed by %q (%v)", id, m.MatchID, owner, err)
		}
	}
	return byTicket
}

// teamsOf is a match as a proposal names it, teams and tickets sorted.
func teamsOf(m events.Match) string {
	teams := map[int][]string{}
	for _, tk := range m.Tickets {
		teams[tk.Team] = append(teams[tk.Team], tk.TicketID)
	}
	var out []string
	for _, ids := range teams {
		slices.Sort(ids)
		out = append(out, strings.Join(ids, ","))
	}
	slices.Sort(out)
	return strings.Join(out, "|")
}

func proposalKey(p matchfn.Proposal) string {
	var out []string
	for _, team := range p.Teams {
		ids := slices.Clone(team)
		slices.Sort(ids)
		out = append(out, strings.Join(ids, ","))
	}
	slices.Sort(out)
	return strings.Join(out, "|")
}

// The example function forms a shard's 2v2 matches: every match is one of
// its proposals, a party stays on one team, and no ticket is matched
// twice; a ticket too far from the others waits.
func TestMatchFunctionEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var mu sync.Mutex
	proposed := map[string]bool{}
	e.serveFunction(t, "closest", func(req matchfn.Request) (matchfn.Reply, error) {
		rep := closest.Propose(req, closest.DefaultSpread)
		mu.Lock()
		defer mu.Unlock()
		for _, p := range rep.Matches {
			proposed[proposalKey(p)] = true
		}
		return rep, nil
	})
	w := e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"2v2","teams":2,"team_size":2,"max_wait":"1m",
		"match_function":{"service":"closest","timeout":"2s","on_failure":"wait"}}]`)})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	res := testkit.Collect(t, e.nc, e.subj.AllResults())

	for _, tk := range []string{
		`"ticket_id":"alice","player_id":"alice","skill":1650`, `"ticket_id":"bob","player_id":"bob","skill":1660`,
		`"ticket_id":"duo","party":["carol","dave"],"skill":1655`, `"ticket_id":"erin","player_id":"erin","skill":1700`,
		`"ticket_id":"frank","player_id":"frank","skill":1710`, `"ticket_id":"gina","player_id":"gina","skill":1720`,
		`"ticket_id":"hank","player_id":"hank","skill":1730`, `"ticket_id":"ivan","player_id":"ivan","skill":1990`,
	} {
		e.pub(t, e.subj.Ticket("eu", "gold"), `{"mode":"2v2",`+tk+`}`)
	}

	testkit.Eventually(t, 15*time.Second, func() bool { return len(e.oneMatchEach(t, matches(t, allocs()))) == 7 }, "7 tickets not matched")
	byTicket := e.oneMatchEach(t, matches(t, allocs()))
	mu.Lock()
	for id, m := range byTicket {
		if !proposed[teamsOf(m)] {
			t.Errorf("match %s (%s) of %s was not proposed by the function: %v", m.MatchID, teamsOf(m), id, proposed)
		}
		if len(m.Players()) != 4 {
			t.Errorf("match %s has %d players", m.MatchID, len(m.Players()))
		}
	}
	mu.Unlock()
	if _, ok := byTicket["ivan"]; ok {
		t.Error("ivan, 260 from everyone, was matched")
	}
	// The silver shard sees the tickets near its bound as visitors and
	// may commit its function's proposals too: the claims keep each
	// ticket in the one match that won them.
	if got := testutil.ToFloat64(w.w.met.proposals.WithLabelValues("accepted")); got < 2 {
		t.Errorf("%v proposals accepted, want 2 or more", got)
	}
	// Each player is told once of one match (a result published again by
	// a retry or a recovery is the same result).
	testkit.Eventually(t, 5*time.Second, func() bool { return len(results(t, res())) == 8 }, "want 8 players told, got %d", len(results(t, res())))
	for p, rs := range results(t, res()) {
		for _, r := range rs {
			if r.Status != events.StatusMatched || r.MatchID != byTicket[r.TicketID].MatchID || p == "ivan" {
				t.Errorf("%s: %+v", p, r)
			}
		}
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 1 }, "ivan is not the one ticket waiting")
}

// A function that replies duplicates (within a proposal, across
// proposals, across calls), unknown tickets and teams of the wrong size
// or number: only its good proposals are matched, each ticket once, and
// every ticket ends matched. (Skills here sit mid-tier, so no ticket
// visits the next tier's shard, whose calls would run the script too.)
func TestMisbehavingMatchFunction(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := make([]string, 12)
	for i := range ids {
		ids[i] = fmt.Sprintf("t%02d", i+1)
	}
	prop := func(teams ...string) matchfn.Proposal {
		var p matchfn.Proposal
		for _, team := range teams {
			p.Teams = append(p.Teams, strings.Split(team, ","))
		}
		return p
	}
	script := [][]matchfn.Proposal{
		{ // every one bad
			prop("t01,t01", "t02,t03"), // a ticket twice in a proposal
			prop("t04,zz", "t05,t06"),  // an unknown ticket
			prop("t07,t08,t09", "t10"), // a team too big, one too small
			prop("t11", "t12"),         // teams too small
		},
		{
			prop("t01,t02", "t03,t04"),        // good
			prop("t05,t06", "t07,t08"),        // t05 twice in the reply:
			prop("t05,t09", "t10,t11"),        // both dropped
			prop("t06,t07,t08,t09"),           // one team
			prop("t10,t11", "t12,t09", "t08"), // three teams
		},
		{
			prop("t01,t02", "t03,t04"), // matched in the last call: not a candidate any more
			prop("t05,t06", "t07,t08"), // good
			prop("t09,t10", "t11,t12"), // good
		},
	}
	var step atomic.Int32
	e.serveFunction(t, "rogue", func(req matchfn.Request) (matchfn.Reply, error) {
		s := int(step.Load())
		if s == 0 && len(req.Candidates) < len(ids) || s >= len(script) {
			return matchfn.Reply{}, nil // until every ticket waits; and after the script
		}
		step.Add(1)
		return matchfn.Reply{Matches: script[s]}, nil
	})
	w := e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"2v2","teams":2,"team_size":2,"max_wait":"1m",
		"match_function":{"service":"rogue","timeout":"2s","on_failure":"wait"}}]`)})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	for i, id := range ids {
		e.pub(t, e.subj.Ticket("eu", "gold"), fmt.Sprintf(`{"mode":"2v2","ticket_id":%q,"player_id":"p%s","skill":%d}`, id, id, 1800+i))
	}

	testkit.Eventually(t, 20*time.Second, func() bool { return len(e.oneMatchEach(t, matches(t, allocs()))) == 12 }, "not every ticket matched")
	got := map[string]bool{}
	for _, m := range e.oneMatchEach(t, matches(t, allocs())) {
		got[teamsOf(m)] = true
	}
	for _, want := range []string{"t01,t02|t03,t04", "t05,t06|t07,t08", "t09,t10|t11,t12"} {
		if !got[want] {
			t.Errorf("no match %s; got %v", want, got)
		}
	}
	met := w.w.met.proposals
	for reason, want := range map[string]float64{"accepted": 3, "ticket_twice": 3, "unknown_ticket": 2, "team_size": 2, "teams": 2} {
		if got := testutil.ToFloat64(met.WithLabelValues(reason)); got != want {
			t.Errorf("%s: %v proposals, want %v", reason, got, want)
		}
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 }, "tickets left unacked")
}

// A function that answers too late, with "wait": nothing is matched, and
// the tickets wait and expire with a result, as without a function.
func TestMatchFunctionTimeoutWaits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.serveFunction(t, "slow", func(req matchfn.Request) (matchfn.Reply, error) {
		time.Sleep(300 * time.Millisecond)
		rep := closest.Propose(req, closest.DefaultSpread)
		return rep, nil
	})
	w := e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"2s",
		"match_function":{"service":"slow","timeout":"100ms","on_failure":"wait"}}]`)})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"a","player_id":"alice","skill":1800}`)
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"b","player_id":"bob","skill":1801}`)

	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == 2 }, "want 2 results, got %d", len(res()))
	for p, rs := range results(t, res()) {
		if len(rs) != 1 || rs[0].Status != events.StatusExpired {
			t.Errorf("%s: %+v, want expired", p, rs)
		}
	}
	if n := len(allocs()); n != 0 {
		t.Fatalf("%d matches formed while the function timed out", n)
	}
	if got := testutil.ToFloat64(w.w.met.functionCalls.WithLabelValues("timeout")); got < 1 {
		t.Errorf("%v timeouts counted", got)
	}
}

// A function that replies garbage, with "fallback": the built-in rules
// match the mode; once it answers again, only its proposals are matched.
func TestMatchFunctionGarbageFallsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var healthy atomic.Bool
	sub, err := testkit.Connect(t, e.srv).Subscribe(e.subj.MatchFunction("flaky"), func(m *nats.Msg) {
		if !healthy.Load() {
			_ = m.Respond([]byte(`{"matches":[{"teams":[["a"],["b"]]}],"bonus":true}`)) // not the contract
			return
		}
		req, err := matchfn.DecodeRequest(m.Data)
		if err != nil {
			_ = m.Respond([]byte(err.Error()))
			return
		}
		reply := `{"matches":[]}`
		if len(req.Candidates) == 3 {
			reply = `{"matches":[{"teams":[["c"],["e"]]}]}` // not the closest pair: the built-in rules would take c and d
		}
		_ = m.Respond([]byte(reply))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	w := e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m",
		"match_function":{"service":"flaky","timeout":"1s","on_failure":"fallback"}}]`)})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	calls := w.w.met.functionCalls

	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"a","player_id":"alice","skill":1800}`)
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"b","player_id":"bob","skill":1810}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(e.oneMatchEach(t, matches(t, allocs()))) == 2 }, "the built-in rules did not take over")
	if m := e.oneMatchEach(t, matches(t, allocs()))["a"]; teamsOf(m) != "a|b" {
		t.Fatalf("fallback match %s", teamsOf(m))
	}
	if got := testutil.ToFloat64(calls.WithLabelValues("malformed")); got < 1 {
		t.Fatalf("%v malformed replies counted", got)
	}

	healthy.Store(true)
	testkit.Eventually(t, 10*time.Second, func() bool { return testutil.ToFloat64(calls.WithLabelValues("answered")) >= 1 }, "the function never answered again")
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"c","player_id":"carol","skill":1800}`)
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"d","player_id":"dave","skill":1805}`)
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"e","player_id":"erin","skill":1890}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(e.oneMatchEach(t, matches(t, allocs()))) == 4 }, "c and e not matched")
	byTicket := e.oneMatchEach(t, matches(t, allocs()))
	if m, ok := byTicket["c"]; !ok || teamsOf(m) != "c|e" {
		t.Fatalf("c in %s, want the function's c|e", teamsOf(m))
	}
	if _, ok := byTicket["d"]; ok {
		t.Fatal("d was matched by the built-in rules while the function answered")
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 1 }, "d is not the one ticket waiting")
}
