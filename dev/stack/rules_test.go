package stack_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/dev/stack"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// parityRuleSet is the one rule set file frontend and matcher are both
// given: one attribute of each kind, platform required, and a 2v2 whose
// teams are at most two.
const parityRuleSet = `{
  "attributes": {
    "platform": {"kind": "string", "values": ["pc", "console"], "required": true},
    "maps": {"kind": "set", "values": ["dust", "nuke"]},
    "level": {"kind": "number", "min": 1, "max": 100},
    "newbie": {"kind": "tag"}
  },
  "modes": [
    {"name": "1v1", "teams": 2, "team_size": 1, "max_wait": "5m",
     "rules": [{"kind": "equal", "attribute": "platform"}]},
    {"name": "2v2", "teams": 2, "team_size": 2, "max_wait": "5m",
     "rules": [{"kind": "equal", "attribute": "platform"}]}
  ]
}`

// parityCase is a ticket that breaks the rule set, written once and sent
// both ways: POSTed to the frontend (with a region) and published raw on
// the ticket subject for the matchers (as `nats pub` would).
type parityCase struct {
	name   string
	ticket map[string]any // the ticket's fields, without skill and region
	field  string         // the field both must name
	// untold: the matcher cannot decode the ticket, so it does not trust
	// the players it names with a result (only the dead letter says).
	untold bool
}

func parityCases() []parityCase {
	pc := map[string]any{"strings": map[string]any{"platform": "pc"}}
	with := func(kind string, v any) map[string]any {
		return map[string]any{"strings": map[string]any{"platform": "pc"}, kind: v}
	}
	return []parityCase{
		{"unknown mode", map[string]any{"player_id": "rp-mode", "mode": "chess", "attributes": pc}, "mode", false},
		{"party of 3 in 2v2", map[string]any{"party": []string{"rp-party", "rp-party-b", "rp-party-c"}, "mode": "2v2", "attributes": pc}, "party", false},
		{"latencies for an unknown region", map[string]any{"player_id": "rp-latency", "mode": "1v1", "latencies_ms": map[string]int{"eu": 20, "mars": 30}, "attributes": pc}, "latencies_ms.mars", false},
		{"undeclared attribute", map[string]any{"player_id": "rp-undeclared", "mode": "1v1", "attributes": map[string]any{"strings": map[string]any{"platform": "pc", "colour": "red"}}}, "attributes.strings.colour", false},
		{"wrong kind", map[string]any{"player_id": "rp-kind", "mode": "1v1", "attributes": map[string]any{"strings": map[string]any{"platform": "pc", "level": "high"}}}, "attributes.strings.level", false},
		{"value not allowed", map[string]any{"player_id": "rp-value", "mode": "1v1", "attributes": map[string]any{"strings": map[string]any{"platform": "switch"}}}, "attributes.strings.platform", false},
		{"set member not allowed", map[string]any{"player_id": "rp-member", "mode": "1v1", "attributes": with("sets", map[string]any{"maps": []string{"inferno"}})}, "attributes.sets.maps[0]", false},
		{"number out of range", map[string]any{"player_id": "rp-range", "mode": "1v1", "attributes": with("numbers", map[string]any{"level": 500})}, "attributes.numbers.level", false},
		{"undeclared tag", map[string]any{"player_id": "rp-tag", "mode": "1v1", "attributes": with("tags", []string{"vip"})}, "attributes.tags[0]", false},
		{"required attribute missing", map[string]any{"player_id": "rp-required", "mode": "1v1"}, "attributes.strings.platform", false},
		// Not the rule set's but the contract's (events.DecodeTicket and
		// Ticket.Validate): the same too.
		{"set member twice", map[string]any{"player_id": "rp-twice", "mode": "1v1", "attributes": with("sets", map[string]any{"maps": []string{"dust", "dust"}})}, "attributes.sets.maps[1]", true},
	}
}

// firstPlayer is the player a case's ticket is told about.
func (c parityCase) firstPlayer() string {
	if p, ok := c.ticket["player_id"].(string); ok {
		return p
	}
	return c.ticket["party"].([]string)[0]
}

// token is the token that POSTs the case's ticket: its player's, or for a
// party the game backend's (a player token queues its own player only).
func (c parityCase) token(t *testing.T, fe string) string {
	t.Helper()
	if _, ok := c.ticket["party"]; ok {
		return devServerToken(t, fe)
	}
	return devToken(t, fe, c.firstPlayer())
}

// encode is the case's ticket as JSON, with skill, plus extra fields.
func (c parityCase) encode(t *testing.T, extra map[string]any) string {
	t.Helper()
	m := maps.Clone(c.ticket)
	m["skill"] = 1650
	maps.Copy(m, extra)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRulesParity: every rule rejection the matcher can make is made by
// the frontend too, for the same field: frontend and matcher run from one
// rule set file (-rules, RULES) and judge each ticket with the same code
// (rules.Set.Check). Each bad ticket is refused by the frontend with 400
// naming the field, and, published raw past the frontend, dead-lettered by
// the matcher naming the same fields, its player told it failed. A good
// ticket is taken both ways, and the two are matched.
func TestRulesParity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(path, []byte(parityRuleSet), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, func(c *stack.Config) {
		// Env reaches every service: frontend and matcher read RULES
		// (their -rules); allocator and game have no such flag.
		c.Env = append(c.Env, "RULES="+path)
		c.Services = []string{"frontend", "matcher"}
		c.GamePorts, c.MatcherOpsPorts = nil, []int{0}
	})
	fe := s.FrontendURL()
	subj := events.Subjects{}
	nc := testkit.ConnectURL(t, s.OperatorURL(), nats.MaxReconnects(0))
	js := testkit.JetStream(t, nc)
	deadLetters := testkit.Collect(t, nc, subj.AllDeadLetters())
	results := testkit.Collect(t, nc, subj.AllResults())
	tier, _ := events.DefaultTiers.For(1650)

	cases := parityCases()
	frontendFields := map[string][]string{}
	for _, c := range cases {
		var body struct {
			Error  string              `json:"error"`
			Fields []events.FieldError `json:"fields"`
		}
		player := c.firstPlayer()
		code := httpJSON(t, c.token(t, fe), http.MethodPost, fe+"/v1/tickets", c.encode(t, map[string]any{"region": "eu"}), &body)
		frontendFields[player] = fieldNames(body.Fields)
		if code != http.StatusBadRequest || !slices.Contains(frontendFields[player], c.field) {
			t.Errorf("%s: frontend answered %d %+v, want 400 naming %s", c.name, code, body, c.field)
		}
		if _, err := js.Publish(t.Context(), subj.Ticket("eu", tier), []byte(c.encode(t, nil))); err != nil {
			t.Fatalf("%s: publish: %v", c.name, err)
		}
	}

	// Every case's dead letter and failed result, by its first player.
	var matcherFields map[string][]string
	var failed map[string]events.Result
	collect := func() bool {
		matcherFields, failed = map[string][]string{}, map[string]events.Result{}
		for _, m := range deadLetters() {
			var dl events.DeadLetter
			var who struct {
				PlayerID string   `json:"player_id"`
				Party    []string `json:"party"`
			}
			if json.Unmarshal(m.Data, &dl) != nil || json.Unmarshal(dl.Payload, &who) != nil {
				continue
			}
			if who.PlayerID == "" && len(who.Party) > 0 {
				who.PlayerID = who.Party[0]
			}
			matcherFields[who.PlayerID] = fieldNames(dl.Fields)
		}
		for _, m := range results() {
			if r, err := events.DecodeResult(m.Data); err == nil && r.Status == events.StatusFailed {
				failed[r.PlayerID] = r
			}
		}
		for _, c := range cases {
			if _, ok := matcherFields[c.firstPlayer()]; !ok {
				return false
			}
			if _, ok := failed[c.firstPlayer()]; !ok && !c.untold {
				return false
			}
		}
		return true
	}
	testkit.Eventually(t, 20*time.Second, collect, "not every bad ticket was dead-lettered with its player told; dead letters:\n%s\nresults:\n%s",
		lazy(func() string { return resultLines(deadLetters()) }), lazy(func() string { return resultLines(results()) }))
	for _, c := range cases {
		p := c.firstPlayer()
		if got := matcherFields[p]; !slices.Contains(got, c.field) || !slices.Equal(got, frontendFields[p]) {
			t.Errorf("%s: the matcher named %q, the frontend %q; want both naming %s", c.name, got, frontendFields[p], c.field)
		}
		if r, ok := failed[p]; (ok || !c.untold) && !strings.Contains(r.Reason, c.field) {
			t.Errorf("%s: %s was told %q, which does not name %s", c.name, p, r.Reason, c.field)
		}
	}

	// A good ticket is taken both ways: one POSTed, one published raw,
	// and the rules match the two.
	good := parityCase{ticket: map[string]any{"player_id": "rp-good-http", "mode": "1v1",
		"attributes": map[string]any{"strings": map[string]any{"platform": "console"}, "numbers": map[string]any{"level": 30}, "tags": []string{"newbie"}}}}
	var view ticketView
	if code := httpJSON(t, devToken(t, fe, "rp-good-http"), http.MethodPost, fe+"/v1/tickets", good.encode(t, map[string]any{"region": "eu"}), &view); code != http.StatusAccepted {
		t.Fatalf("a good ticket over HTTP: %d %+v", code, view)
	}
	good.ticket["player_id"] = "rp-good-nats"
	if _, err := js.Publish(t.Context(), subj.Ticket("eu", tier), []byte(good.encode(t, nil))); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		matched := map[string]string{}
		for _, m := range results() {
			if r, err := events.DecodeResult(m.Data); err == nil && r.Status == events.StatusMatched {
				matched[r.PlayerID] = r.MatchID
			}
		}
		return matched["rp-good-http"] != "" && matched["rp-good-http"] == matched["rp-good-nats"]
	}, "the good tickets were not matched together:\n%s", lazy(func() string { return resultLines(results()) }))
	for _, m := range deadLetters() {
		if strings.Contains(string(m.Data), "rp-good") {
			t.Errorf("a good ticket was dead-lettered: %s", m.Data)
		}
	}
}

func fieldNames(fields []events.FieldError) []string {
	var names []string
	for _, f := range fields {
		names = append(names, f.Field)
	}
	slices.Sort(names)
	return names
}

// resultLines are messages as `nats sub` shows them.
func resultLines(msgs []*nats.Msg) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%s %s\n", m.Subject, m.Data)
	}
	return b.String()
}

// lazy is a message part written when a wait fails, not when it starts.
type lazy func() string

func (l lazy) String() string { return l() }
