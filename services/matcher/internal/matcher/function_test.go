package matcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/matchfn"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// Every kind of bad proposal is dropped, with its reason counted, and
// leaves the pool as it was: no ticket leaves it but into a commit. A
// reply whose every proposal is bad marks the function failing.
func TestBadProposalsAreDropped(t *testing.T) {
	t.Parallel()
	set, err := rules.Parse([]byte(`{"modes":[{"name":"2v2","teams":2,"team_size":2,"max_wait":"1m",
		"match_function":{"service":"f","on_failure":"wait"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := set.Mode("2v2")
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name  string
		reply string // proposals, ";" between them: "a,b|c,d; e,f|g,h"
		want  matchfn.Reason
	}{
		{"unknown ticket", "a,zz|c,d", matchfn.ReasonUnknownTicket},
		{"ticket twice in a team", "a,a|c,d", matchfn.ReasonTicketTwice},
		{"ticket twice across teams", "a,b|a,d", matchfn.ReasonTicketTwice},
		{"ticket twice across proposals", "a,b|c,d; a,e|f,duo", matchfn.ReasonTicketTwice},
		{"team too big", "a,b,e|c,d", matchfn.ReasonTeamSize},
		{"team too small", "a|c,d", matchfn.ReasonTeamSize},
		{"party overfills a team", "duo,a|c,d", matchfn.ReasonTeamSize},
		{"three teams", "a,b|c,d|e,f", matchfn.ReasonTeams},
		{"one team", "a,b,c,d", matchfn.ReasonTeams},
		{"player twice", "a,b|a2,d", matchfn.ReasonPlayerTwice},
		{"ticket gone during the call", "a,b|c,gone", matchfn.ReasonNotWaiting},
		{"ticket back as another message", "a,b|c,stale", matchfn.ReasonNotWaiting},
		{"outside the skill window", "a,b|c,far", matchfn.ReasonRules},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &runner{log: slog.New(slog.NewTextHandler(testLog(), nil)), met: newMetrics(prometheus.NewRegistry()),
				now: func() time.Time { return now }, functions: newFunctions(), pools: map[string]*pool.Pool{}}
			p := pool.New(m)
			r.pools[m.Name] = p
			r.functions.byMode[m.Name] = &function{calling: true}
			entry := func(id string, skill int, players ...string) *pool.Entry {
				if len(players) == 0 {
					players = []string{"p" + id}
				}
				e := &pool.Entry{TicketID: id, Players: players, Skill: skill, Created: now.Add(-time.Second).UnixNano(), Seq: 1}
				p.Add(e)
				return e
			}
			sent := []*pool.Entry{entry("a", 1650, "pa"), entry("b", 1660), entry("c", 1670), entry("d", 1680),
				entry("e", 1690), entry("f", 1700), entry("duo", 1650, "x", "y"), entry("a2", 1650, "pa"),
				entry("far", 1990), entry("gone", 1650), entry("stale", 1650)}
			p.Remove("gone")
			p.Remove("stale")
			p.Add(&pool.Entry{TicketID: "stale", Players: []string{"pstale"}, Skill: 1650, Created: now.UnixNano(), Seq: 2})
			out := functionReply{mode: m.Name, service: "f", p: p, sent: map[string]*pool.Entry{},
				req: matchfn.Request{Mode: matchfn.Mode{Name: m.Name, Teams: 2, TeamSize: 2}, Region: "eu", Tier: "gold"}}
			for _, e := range sent {
				out.sent[e.TicketID] = e
				out.req.Candidates = append(out.req.Candidates, candidateOf(e, now))
			}
			for _, prop := range strings.Split(tc.reply, ";") {
				var teams [][]string
				for _, team := range strings.Split(strings.TrimSpace(prop), "|") {
					teams = append(teams, strings.Split(team, ","))
				}
				out.reply.Matches = append(out.reply.Matches, matchfn.Proposal{Teams: teams})
			}
			before := p.Len()

			r.settleCall(t.Context(), out)

			if got := testutil.ToFloat64(r.met.proposals.WithLabelValues(string(tc.want))); int(got) != len(out.reply.Matches) {
				t.Errorf("%s: %v dropped, want %d", tc.want, got, len(out.reply.Matches))
			}
			if got := testutil.ToFloat64(r.met.proposals.WithLabelValues("accepted")); got != 0 {
				t.Errorf("%v accepted", got)
			}
			if p.Len() != before || len(r.inflight) != 0 || r.committing != 0 {
				t.Fatalf("pool holds %d (was %d), %d in flight", p.Len(), before, len(r.inflight))
			}
			for _, e := range sent {
				if e.TicketID != "gone" && e.TicketID != "stale" && !p.Contains(e) {
					t.Errorf("%s left the pool", e.TicketID)
				}
			}
			// A reply all of whose proposals are bad misbehaves; one whose
			// tickets left the pool during the call raced, no more.
			if failing := r.functions.byMode[m.Name].failing; failing != (tc.want != matchfn.ReasonNotWaiting) {
				t.Errorf("failing %v after a reply refused for %s", failing, tc.want)
			}
		})
	}
}

// A call that fails marks the mode failing, and the built-in rules form
// its matches only if it falls back.
func TestBuiltInOnlyWhenAFunctionFailsAndFallsBack(t *testing.T) {
	t.Parallel()
	set, err := rules.Parse([]byte(`{"modes":[
		{"name":"plain","teams":2,"team_size":1,"max_wait":"1m"},
		{"name":"fallback","teams":2,"team_size":1,"max_wait":"1m","match_function":{"service":"f"}},
		{"name":"wait","teams":2,"team_size":1,"max_wait":"1m","match_function":{"service":"f","on_failure":"wait"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{log: slog.New(slog.NewTextHandler(testLog(), nil)), met: newMetrics(prometheus.NewRegistry()), functions: newFunctions(), now: time.Now}
	pools := map[string]*pool.Pool{}
	for _, name := range set.Modes() {
		m, _ := set.Mode(name)
		pools[name] = pool.New(m)
		r.functions.byMode[name] = &function{calling: true}
	}
	check := func(when string, want map[string]bool) {
		t.Helper()
		for name, w := range want {
			if got := r.builtIn(pools[name]); got != w {
				t.Errorf("%s: %s: built-in rules %v, want %v", when, name, got, w)
			}
		}
	}
	check("answering", map[string]bool{"plain": true, "fallback": false, "wait": false})
	for _, name := range []string{"fallback", "wait"} {
		r.settleCall(t.Context(), functionReply{mode: name, service: "f", p: pools[name], err: &matchfn.Error{Code: "500", Description: "down"}})
	}
	check("failing", map[string]bool{"plain": true, "fallback": true, "wait": false})
	if got := testutil.ToFloat64(r.met.functionCalls.WithLabelValues("error")); got != 2 {
		t.Errorf("%v failed calls counted, want 2", got)
	}
	for _, name := range []string{"fallback", "wait"} {
		r.functions.byMode[name].calling = true
		r.settleCall(t.Context(), functionReply{mode: name, service: "f", p: pools[name]})
	}
	check("answering again", map[string]bool{"plain": true, "fallback": false, "wait": false})
}

func TestFailureKind(t *testing.T) {
	t.Parallel()
	_, malformed := matchfn.DecodeReply([]byte("garbage"))
	for _, tc := range []struct {
		err  error
		want string
	}{
		{malformed, "malformed"},
		{&matchfn.Error{Code: "500"}, "error"},
		{fmt.Errorf("%w: matchfunctions.f", matchfn.ErrNoFunction), "unavailable"},
		{fmt.Errorf("call match function: %w", context.DeadlineExceeded), "timeout"},
		{errors.New("connection closed"), "failed"},
	} {
		if got := failureKind(tc.err); got != tc.want {
			t.Errorf("failureKind(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

// A reply to a request of the mode as it was before a reload changed its
// teams is dropped whole: its proposals are for other teams.
func TestReplyForTeamsChangedByAReloadIsDropped(t *testing.T) {
	t.Parallel()
	set, err := rules.Parse([]byte(`{"modes":[{"name":"duel","teams":2,"team_size":2,"max_wait":"1m","match_function":{"service":"f"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := set.Mode("duel")
	now := time.Unix(1_800_000_000, 0)
	r := &runner{log: slog.New(slog.NewTextHandler(testLog(), nil)), met: newMetrics(prometheus.NewRegistry()),
		now: func() time.Time { return now }, functions: newFunctions()}
	r.functions.byMode[m.Name] = &function{calling: true}
	p := pool.New(m)
	out := functionReply{mode: m.Name, service: "f", p: p, sent: map[string]*pool.Entry{},
		req:   matchfn.Request{Mode: matchfn.Mode{Name: m.Name, Teams: 2, TeamSize: 1}}, // before the reload
		reply: matchfn.Reply{Matches: []matchfn.Proposal{{Teams: [][]string{{"a"}, {"b"}}}}}}
	for _, id := range []string{"a", "b"} {
		e := &pool.Entry{TicketID: id, Players: []string{"p" + id}, Skill: 1800, Created: now.UnixNano()}
		p.Add(e)
		out.sent[id] = e
		out.req.Candidates = append(out.req.Candidates, candidateOf(e, now))
	}
	r.settleCall(t.Context(), out)
	if p.Len() != 2 || r.committing != 0 || testutil.ToFloat64(r.met.proposals.WithLabelValues("accepted")) != 0 {
		t.Fatalf("a proposal for 1v1 teams was taken into a 2v2 mode: %d waiting", p.Len())
	}
}
