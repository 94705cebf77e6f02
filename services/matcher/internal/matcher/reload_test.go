package matcher

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestTicketOfAnUnfinishedMatchOutlivesANewRuleSet: a matcher formed
// m-dead ("casual") of ta and tb, claimed them, and died before
// publishing it. A reload then removed or tightened "casual", so the
// next owner of eu.gold refuses ta and tb when they come back. Refused
// or not, they are m-dead's: a match that holds their claims is
// followed as an expiry follows it (recoverMatch). Published (decided
// before, or decided now), its players are told they matched and no
// dead letter is written; undone (its matcher died claiming), the
// tickets are free again and refused like any other.
func TestTicketOfAnUnfinishedMatchOutlivesANewRuleSet(t *testing.T) {
	t.Parallel()
	const (
		oneVsOne = `{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"}`
		casual   = `{"name":"casual","teams":2,"team_size":1,"max_wait":"1m"}`
	)
	cases := []struct {
		name  string
		rules string
		// age is how old ta and tb are when they come back.
		age time.Duration
		// decided: the dead matcher decided m-dead published; partial:
		// it claimed ta only (long ago, by the worker's clock).
		decided, partial bool
		// matched: m-dead is published, else a and b are told failed.
		matched bool
	}{
		{name: "mode removed, decided", rules: `{"modes":[` + oneVsOne + `]}`, age: 2 * time.Second, decided: true, matched: true},
		{name: "mode removed, undecided", rules: `{"modes":[` + oneVsOne + `]}`, age: 2 * time.Second, matched: true},
		{name: "attribute required, undecided", age: 2 * time.Second, matched: true,
			rules: `{"attributes":{"platform":{"kind":"string","values":["pc"],"required":true}},"modes":[` + casual + `]}`},
		{name: "max wait shortened, decided", rules: `{"modes":[` + casual + `]}`, age: 10 * time.Minute, decided: true, matched: true},
		{name: "mode removed, partial claims", rules: `{"modes":[` + oneVsOne + `]}`, age: 2 * time.Second, partial: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			t0 := time.Now().UTC().Add(-c.age)
			tk := func(id, p string) string {
				return fmt.Sprintf(`{"ticket_id":%q,"player_id":%q,"skill":1650,"mode":"casual","created_at":%q}`, id, p, t0.Format(time.RFC3339Nano))
			}
			refusedBy(t, c.rules, tk("ta", "a"))

			e := newEnv(t)
			allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
			told := testkit.Collect(t, e.nc, e.subj.AllResults())
			dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
			e.deadMatch(t, t0, c.decided, c.partial)
			e.liveTicket(t, "a", "ta", t0)
			e.liveTicket(t, "b", "tb", t0)
			clock := newTestClock()
			if c.partial {
				clock.add(2 * staleClaim) // its partial claims are a dead matcher's
			}
			e.startWorker(t, Config{RulesFile: writeRules(t, "", c.rules)}, clock.set)
			e.pub(t, e.subj.Ticket("eu", "gold"), tk("ta", "a"))
			e.pub(t, e.subj.Ticket("eu", "gold"), tk("tb", "b"))

			want := events.StatusFailed
			if c.matched {
				want = events.StatusMatched
			}
			testkit.Eventually(t, 10*time.Second, func() bool {
				res := results(t, told())
				return len(res["a"]) > 0 && len(res["b"]) > 0
			}, "a and b never told: m-dead's tickets stranded")
			time.Sleep(300 * time.Millisecond) // anything else they would be told
			for p, rs := range results(t, told()) {
				for _, r := range rs {
					if r.Status != want || (c.matched && r.MatchID != "m-dead") {
						t.Errorf("%s told %+v, want %s (m-dead)", p, r, want)
					}
				}
			}
			ms := published(t, allocs())
			if c.matched && (len(ms) != 1 || ms[0].MatchID != "m-dead") {
				t.Errorf("published %+v, want m-dead alone", ms)
			}
			if !c.matched && len(ms) != 0 {
				t.Errorf("published %+v, want none", ms)
			}
			if n := len(dls()); c.matched && n != 0 {
				t.Errorf("%d dead letters for the tickets of a published match", n)
			} else if !c.matched && n != 2 {
				t.Errorf("%d dead letters, want ta's and tb's", n)
			}
		})
	}
}

// refusedBy fails the test unless the rule set body refuses ticket as
// the intake does (Check, then BoundCreated): a case that it accepted
// would test nothing.
func refusedBy(t *testing.T, body, ticket string) {
	t.Helper()
	set, err := rules.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	tk, err := events.DecodeTicket([]byte(ticket))
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Check(&tk, events.DefaultRegions); err != nil {
		return
	}
	mode, _ := set.Mode(tk.Mode)
	if tk.BoundCreated(time.Now(), time.Duration(mode.MaxWait)) == nil {
		t.Fatalf("the rule set accepts %s", ticket)
	}
}

// deadMatch stores match m-dead ("casual", of ta and tb, created at t0)
// as a matcher that died before publishing it left it: its record, the
// claims of both tickets (of ta only, partial) and, decided, its
// decision to publish.
func (e *env) deadMatch(t *testing.T, t0 time.Time, decided, partial bool) {
	t.Helper()
	m := events.Match{SchemaVersion: 1, MatchID: "m-dead", Mode: "casual", Region: "eu", Tier: "gold", CreatedAt: t0,
		Tickets: []events.MatchTicket{{TicketID: "ta", Players: []string{"a"}, Skill: 1650, CreatedAt: t0},
			{TicketID: "tb", Players: []string{"b"}, Team: 1, Skill: 1650, CreatedAt: t0}}}
	kv, err := e.js.KeyValue(t.Context(), e.subj.MatchesBucket())
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(m)
	if _, err := kv.Put(t.Context(), m.MatchID, data); err != nil {
		t.Fatal(err)
	}
	claimed := []string{"ta", "tb"}
	if partial {
		claimed = claimed[:1]
	}
	if lost, err := e.claims(t).ClaimAll(t.Context(), claimed, events.MatchOwner(m.MatchID)); err != nil || len(lost) != 0 {
		t.Fatalf("claims: %v %v", lost, err)
	}
	if !decided {
		return
	}
	dec, err := events.NewDecisions(t.Context(), e.js, e.subj)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := dec.Decide(t.Context(), m.MatchID, events.DecisionPublished); err != nil {
		t.Fatal(err)
	}
}
