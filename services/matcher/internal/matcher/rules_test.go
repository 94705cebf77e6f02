package matcher

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// attrRules is a rule set with attributes: crossplay kept apart (the
// platform must be equal, and every ticket names one), map preferences,
// a level, a tag.
const attrRules = `{
  "attributes": {
    "platform": {"kind": "string", "values": ["pc", "xbox"], "required": true},
    "maps":     {"kind": "set", "values": ["dust", "nuke"]},
    "level":    {"kind": "number", "min": 1, "max": 100},
    "newbie":   {"kind": "tag"}
  },
  "modes": [
    {"name": "1v1", "teams": 2, "team_size": 1, "max_wait": "1m", "rules": [{"kind": "equal", "attribute": "platform"}]},
    {"name": "2v2", "teams": 2, "team_size": 2, "max_wait": "1m", "rules": [{"kind": "equal", "attribute": "platform"}]}
  ]
}`

// writeRules writes a rule set file at path (a new one in a temporary
// directory when path is empty) and returns its path.
func writeRules(t *testing.T, path, body string) string {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "rules.json")
	}
	// Written whole and renamed, as a ConfigMap volume swaps it: a reload
	// never reads half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMatcherRefusesWhatTheRuleSetRefuses: every ticket the rule set's
// Check refuses (the frontend's check too) is dead-lettered by the
// matcher with exactly Check's fields and reasons, and its players are
// told; a ticket it accepts is matched, carrying its attributes and
// latencies into the match.
func TestMatcherRefusesWhatTheRuleSetRefuses(t *testing.T) {
	t.Parallel()
	set, err := rules.Parse([]byte(attrRules))
	if err != nil {
		t.Fatal(err)
	}
	bad := []string{
		`{"player_id":"r1","skill":1700,"mode":"chess","attributes":{"strings":{"platform":"pc"}}}`,
		`{"party":["r2a","r2b"],"skill":1700,"attributes":{"strings":{"platform":"pc"}}}`,
		`{"player_id":"r3","skill":1700,"latencies_ms":{"mars":5},"attributes":{"strings":{"platform":"pc"}}}`,
		`{"player_id":"r4","skill":1700}`,
		`{"player_id":"r5","skill":1700,"attributes":{"strings":{"platform":"switch"}}}`,
		`{"player_id":"r6","skill":1700,"attributes":{"strings":{"platform":"pc","colour":"red"}}}`,
		`{"player_id":"r7","skill":1700,"attributes":{"strings":{"platform":"pc"},"numbers":{"level":500}}}`,
		`{"player_id":"r8","skill":1700,"attributes":{"strings":{"platform":"pc"},"sets":{"maps":["mirage"]}}}`,
		`{"player_id":"r9","skill":1700,"attributes":{"strings":{"platform":"pc"},"tags":["vip"]}}`,
		`{"player_id":"r10","skill":1700,"attributes":{"numbers":{"platform":1}}}`,
	}
	want := map[string][]events.FieldError{}
	for _, b := range bad {
		tk, err := events.DecodeTicket([]byte(b))
		if err != nil {
			t.Fatalf("%s: the contract refuses it already: %v", b, err)
		}
		var ve *events.ValidationError
		if err := set.Check(&tk, events.DefaultRegions); !errors.As(err, &ve) {
			t.Fatalf("%s: Check = %v, want a validation error", b, err)
		}
		want[b] = ve.Fields
	}
	e := newEnv(t)
	e.startWorker(t, Config{RulesFile: writeRules(t, "", attrRules)})
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	told := testkit.Collect(t, e.nc, e.subj.Result("r5"))
	for _, b := range bad {
		e.pub(t, e.subj.Ticket("eu", "gold"), b)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(dls()) == len(bad) }, "want %d dead letters, got %d", len(bad), len(dls()))
	for _, d := range deadLetters(t, dls()) {
		if w, ok := want[string(d.Payload)]; !ok || !reflect.DeepEqual(d.Fields, w) {
			t.Errorf("dead letter of %s: fields %+v, want Check's %+v", d.Payload, d.Fields, w)
		}
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return len(told()) == 1 }, "r5 not told")
	if r := results(t, told())["r5"][0]; r.Status != events.StatusFailed || !strings.Contains(r.Reason, "attributes.strings.platform") {
		t.Errorf("r5 told %+v", r)
	}

	// Accepted: the platforms are kept apart, and a match carries what a
	// requeue needs to be judged again.
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"pc1","player_id":"pc1","skill":1700,"latencies_ms":{"eu":20,"us":300},"attributes":{"strings":{"platform":"pc"},"numbers":{"level":7},"tags":["newbie"]}}`)
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"xb1","player_id":"xb1","skill":1700,"attributes":{"strings":{"platform":"xbox"}}}`)
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"pc2","player_id":"pc2","skill":1700,"attributes":{"strings":{"platform":"pc"},"sets":{"maps":["dust"]}}}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) > 0 }, "no match")
	time.Sleep(200 * time.Millisecond)
	ms := published(t, allocs())
	if len(ms) != 1 {
		t.Fatalf("want 1 match, got %+v", ms)
	}
	byID := map[string]events.MatchTicket{}
	for _, mt := range ms[0].Tickets {
		byID[mt.TicketID] = mt
	}
	pc1, pc2 := byID["pc1"], byID["pc2"]
	if len(byID) != 2 || pc1.TicketID == "" || pc2.TicketID == "" {
		t.Fatalf("match %+v, want pc1 and pc2", ms[0].Tickets)
	}
	wantA := &events.Attributes{Strings: map[string]string{"platform": "pc"}, Numbers: map[string]float64{"level": 7}, Tags: []string{"newbie"}}
	if !reflect.DeepEqual(pc1.Attributes, wantA) || !reflect.DeepEqual(pc1.LatenciesMS, map[string]int{"eu": 20, "us": 300}) {
		t.Errorf("pc1 in the match: attributes %+v, latencies %v", pc1.Attributes, pc1.LatenciesMS)
	}
	if !reflect.DeepEqual(pc2.Attributes.Sets, map[string][]string{"maps": {"dust"}}) || pc2.LatenciesMS != nil {
		t.Errorf("pc2 in the match: attributes %+v, latencies %v", pc2.Attributes, pc2.LatenciesMS)
	}
}

// TestBadRuleSetRefusesTheStart: a matcher does not start without its
// rules.
func TestBadRuleSetRefusesTheStart(t *testing.T) {
	t.Parallel()
	for name, path := range map[string]string{
		"bad":     writeRules(t, "", `{"modes":[{"name":"1v1","teams":1,"team_size":1,"max_wait":"1m"}]}`),
		"missing": filepath.Join(t.TempDir(), "none.json"),
	} {
		_, err := New(Config{RulesFile: path}, nil, events.Subjects{}, slog.New(slog.NewTextHandler(testLog(), nil)), prometheus.NewRegistry())
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s rule set: New = %v, want an error naming %s", name, err, path)
		}
	}
}

// TestRuleSetReloadsWithoutRestart: a running worker's rule set file is
// changed under it. A mode added becomes matchable; a mode's new skill
// window reaches the tickets already waiting; a mode removed refuses new
// tickets while its waiting ones stay; a bad file is refused and the rules
// in force kept.
func TestRuleSetReloadsWithoutRestart(t *testing.T) {
	t.Parallel()
	const narrow = `{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m","skill_window":{"initial":1,"per_second":0,"max":1}}`
	const wide = `{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m","skill_window":{"initial":100,"per_second":0,"max":100}}`
	// Windows that never reach another tier: every ticket stays in
	// eu.gold (1600-1999), with no visitor copy elsewhere.
	const duel = `{"name":"duel","teams":2,"team_size":1,"max_wait":"1m","skill_window":{"initial":50,"per_second":0,"max":50}}`
	e := newEnv(t)
	path := writeRules(t, "", `{"modes":[`+narrow+`]}`)
	w := e.startWorker(t, Config{RulesFile: path, RulesReload: 20 * time.Millisecond})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	reload := func(body string, inForce func(*rules.Set) bool) {
		t.Helper()
		writeRules(t, path, body)
		testkit.Eventually(t, 5*time.Second, func() bool { return inForce(w.w.rules.Get()) }, "rule set not reloaded")
	}
	hasDuel := func(s *rules.Set) bool { _, ok := s.Mode("duel"); return ok }

	// Not in the rule set yet: refused.
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"d0","player_id":"d0","skill":1800,"mode":"duel"}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(dls()) == 1 }, "duel ticket not refused")
	// Two 1v1 tickets 100 apart wait with windows of 1.
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"n1","player_id":"n1","skill":1750}`)
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"n2","player_id":"n2","skill":1850}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return w.waiting() == 2 }, "1v1 tickets not pooled")

	reload(`{"modes":[`+wide+`,`+duel+`]}`, hasDuel)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 1 }, "the waiting tickets never met with the new window")
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"d1","player_id":"d1","skill":1800,"mode":"duel"}`)
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"d2","player_id":"d2","skill":1800,"mode":"duel"}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 2 }, "the new mode was not matched")

	// duel removed: a waiting duel ticket stays; a new one is refused.
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"d3","player_id":"d3","skill":1800,"mode":"duel"}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return w.waiting() == 1 }, "d3 not pooled")
	reload(`{"modes":[`+wide+`]}`, func(s *rules.Set) bool { return !hasDuel(s) })
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"d4","player_id":"d4","skill":1800,"mode":"duel"}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(dls()) == 2 }, "a ticket of the removed mode was not refused")
	time.Sleep(200 * time.Millisecond)
	if n := w.waiting(); n != 1 {
		t.Fatalf("%d tickets waiting, want d3 still", n)
	}

	// A bad file is refused: the rules in force stay, and duel comes
	// back with the next good file, d3 meeting a new partner.
	before := w.w.rules.Get()
	writeRules(t, path, `{"modes":[{"name":"duel","teams":0}]}`)
	time.Sleep(200 * time.Millisecond) // several reloads
	if w.w.rules.Get() != before {
		t.Fatal("a bad rule set was put in force")
	}
	reload(`{"modes":[`+wide+`,`+duel+`]}`, hasDuel)
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"d5","player_id":"d5","skill":1800,"mode":"duel"}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 3 }, "d3 never met d5")
	ids := []string{}
	for _, mt := range published(t, allocs())[2].Tickets {
		ids = append(ids, mt.TicketID)
	}
	if s := strings.Join(ids, ","); s != "d3,d5" && s != "d5,d3" {
		t.Fatalf("third match of %s, want d3 and d5", s)
	}
}
