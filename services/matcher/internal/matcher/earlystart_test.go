package matcher

import (
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/matchfn"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// TestMatchStartsEarly: a free-for-all of 8 that starts early with 4 after
// 10 s. Five tickets wait, no more come: nothing forms while the clock
// stands still; once 10 s have passed a sweep forms a match of the five,
// one a team, whose events.Match carries the room's shape (8 teams of 1).
// Eight tickets that arrive together (first) form a full match, without
// a shape. The skill window stays within the tier: no copy of a ticket is
// offered to another tier's shard, which could open a match of its own.
func TestMatchStartsEarly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clk := newTestClock()
	w := e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"ffa","teams":8,"team_size":1,"max_wait":"1m","backfill":true,
		"skill_window":{"initial":50,"max":50},"start_early":{"min_teams":4,"after":"10s"}}]`)}, clk.set)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	for i := range 8 {
		e.pub(t, e.subj.Ticket("eu", "gold"), fmt.Sprintf(`{"ticket_id":"full-%d","player_id":"full-%d","skill":1800,"mode":"ffa"}`, i, i))
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 1 }, "no full match")
	full := published(t, allocs())[0]
	if full.Teams != 0 || full.TeamSize != 0 || len(full.Tickets) != 8 {
		t.Fatalf("full match: teams %d of %d, %d tickets", full.Teams, full.TeamSize, len(full.Tickets))
	}

	for i := range 5 {
		e.pub(t, e.subj.Ticket("eu", "gold"), fmt.Sprintf(`{"ticket_id":"early-%d","player_id":"early-%d","skill":1800,"mode":"ffa"}`, i, i))
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return w.waiting() == 5 }, "tickets not pooled")
	time.Sleep(300 * time.Millisecond) // sweeps, before 10 s
	if n := len(published(t, allocs())); n != 1 {
		t.Fatalf("%d matches before start_early.after, want the full one", n-1)
	}

	clk.add(11 * time.Second) // the tickets were stored after the clock started
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 2 }, "no match started early")
	m := published(t, allocs())[1]
	if m.Teams != 8 || m.TeamSize != 1 || len(m.Tickets) != 5 || !m.AcceptsBackfill {
		t.Fatalf("match started early: teams %d of %d, %d tickets, accepts backfill %v: %+v", m.Teams, m.TeamSize, len(m.Tickets), m.AcceptsBackfill, m.Tickets)
	}
	var teams []int
	for _, mt := range m.Tickets {
		teams = append(teams, mt.Team)
	}
	slices.Sort(teams)
	if !slices.Equal(teams, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("tickets on teams %v, want 0 to 4", teams)
	}
}

// TestProposalOfFewerTeamsIsRefused: a match function proposes full
// matches only, even in a mode that starts early and with tickets that
// waited past its after: two teams of a 2v2v2 are refused (teams), and
// every ticket still waits.
func TestProposalOfFewerTeamsIsRefused(t *testing.T) {
	t.Parallel()
	set, err := rules.Parse([]byte(`{"modes":[{"name":"2v2v2","teams":3,"team_size":2,"max_wait":"1m",
		"start_early":{"min_teams":2,"after":"10s"},"match_function":{"service":"f","on_failure":"wait"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := set.Mode("2v2v2")
	now := time.Unix(1_800_000_000, 0)
	r := &runner{log: slog.New(slog.NewTextHandler(testLog(), nil)), met: newMetrics(prometheus.NewRegistry()),
		now: func() time.Time { return now }, functions: newFunctions(), pools: map[string]*pool.Pool{}}
	p := pool.New(m)
	r.pools[m.Name] = p
	r.functions.byMode[m.Name] = &function{calling: true}
	out := functionReply{mode: m.Name, service: "f", p: p, sent: map[string]*pool.Entry{},
		req:   matchfn.Request{Mode: matchfn.Mode{Name: m.Name, Teams: 3, TeamSize: 2}, Region: "eu", Tier: "gold"},
		reply: matchfn.Reply{Matches: []matchfn.Proposal{{Teams: [][]string{{"a", "b"}, {"c", "d"}}}}}}
	for _, id := range []string{"a", "b", "c", "d"} {
		e := &pool.Entry{TicketID: id, Players: []string{"p" + id}, Skill: 1650, Created: now.Add(-30 * time.Second).UnixNano(), Seq: 1}
		p.Add(e)
		out.sent[id] = e
		out.req.Candidates = append(out.req.Candidates, candidateOf(e, now))
	}

	r.settleCall(t.Context(), out)

	if got := testutil.ToFloat64(r.met.proposals.WithLabelValues(string(matchfn.ReasonTeams))); got != 1 {
		t.Errorf("%v refused for its teams, want 1", got)
	}
	if p.Len() != 4 || len(r.inflight) != 0 || r.committing != 0 {
		t.Fatalf("pool holds %d of 4, %d in flight", p.Len(), len(r.inflight))
	}
}
