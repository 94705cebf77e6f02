package tickets

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// testRuleSet declares one attribute of each kind, platform required,
// and two modes: the rules every refusal below comes from.
const testRuleSet = `{
  "attributes": {
    "platform": {"kind": "string", "values": ["pc", "console"], "required": true},
    "maps": {"kind": "set", "values": ["dust", "nuke"]},
    "level": {"kind": "number", "min": 1, "max": 100},
    "newbie": {"kind": "tag"}
  },
  "modes": [
    {"name": "1v1", "teams": 2, "team_size": 1, "max_wait": "5m"},
    {"name": "2v2", "teams": 2, "team_size": 2, "max_wait": "5m",
     "rules": [{"kind": "equal", "attribute": "platform"}]}
  ]
}`

func testService(t testing.TB, ruleSet string) *Service {
	t.Helper()
	set, err := rules.Parse([]byte(ruleSet))
	if err != nil {
		t.Fatal(err)
	}
	return &Service{cfg: Config{Regions: events.DefaultRegions, Tiers: events.DefaultTiers, Rules: rules.Fixed(set)},
		now: func() time.Time { return time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC) }}
}

// Every way a ticket breaks the rule set is refused by build, before
// anything is stored or published, with the field named: the rule set's
// own check (rules.Set.Check), not a copy of it.
func TestBuildRefusesWhatTheRuleSetRefuses(t *testing.T) {
	t.Parallel()
	s := testService(t, testRuleSet)
	const pc = `"attributes":{"strings":{"platform":"pc"}}`
	tests := []struct {
		name, body string
		fields     string
	}{
		{"unknown mode", `{"player_id":"a","mode":"chess","skill":1,"region":"eu",` + pc + `}`, "mode"},
		{"party of 3 in 2v2", `{"party":["a","b","c"],"mode":"2v2","skill":1,"region":"eu",` + pc + `}`, "party"},
		{"party of 2 in 1v1", `{"party":["a","b"],"mode":"1v1","skill":1,"region":"eu",` + pc + `}`, "party"},
		{"latencies for an unknown region", `{"player_id":"a","skill":1,"region":"eu","latencies_ms":{"eu":20,"mars":30},` + pc + `}`, "latencies_ms.mars"},
		{"undeclared attribute", `{"player_id":"a","skill":1,"region":"eu","attributes":{"strings":{"platform":"pc","colour":"red"}}}`, "attributes.strings.colour"},
		{"wrong kind", `{"player_id":"a","skill":1,"region":"eu","attributes":{"strings":{"platform":"pc"},"numbers":{"maps":1}}}`, "attributes.numbers.maps"},
		{"value not allowed", `{"player_id":"a","skill":1,"region":"eu","attributes":{"strings":{"platform":"switch"}}}`, "attributes.strings.platform"},
		{"set member not allowed", `{"player_id":"a","skill":1,"region":"eu","attributes":{"strings":{"platform":"pc"},"sets":{"maps":["dust","inferno"]}}}`, "attributes.sets.maps[1]"},
		{"number out of range", `{"player_id":"a","skill":1,"region":"eu","attributes":{"strings":{"platform":"pc"},"numbers":{"level":500}}}`, "attributes.numbers.level"},
		{"undeclared tag", `{"player_id":"a","skill":1,"region":"eu","attributes":{"strings":{"platform":"pc"},"tags":["vip"]}}`, "attributes.tags[0]"},
		{"required attribute missing", `{"player_id":"a","skill":1,"region":"eu"}`, "attributes.strings.platform"},
		{"a bound of the contract", `{"player_id":"a","skill":1,"region":"eu","attributes":{"strings":{"platform":"pc"},"sets":{"maps":["dust","dust"]}}}`, "attributes.sets.maps[1]"},
		{"contract and rule set at once", `{"player_id":"a.b","mode":"chess","skill":-1,"region":"eu",` + pc + `}`, "player_id,skill,mode"},
		{"a field refused twice is named once", `{"party":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"],"mode":"2v2","skill":1,"region":"eu",` + pc + `}`, "party"},
		{"unknown region and rule set", `{"player_id":"a","skill":1,"region":"mars"}`, "attributes.strings.platform,region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var req Request
			if err := events.DecodeStrict("request", []byte(tt.body), &req); err != nil {
				t.Fatalf("decode: %v", err)
			}
			_, _, err := s.build(s.RuleSet(), req)
			var ve *events.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("build: %v, want a validation error naming %s", err, tt.fields)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
			}
			if strings.Join(got, ",") != tt.fields {
				t.Fatalf("fields %q, want %s (%v)", got, tt.fields, err)
			}
		})
	}
}

// Attributes the rule set declares are taken as sent into the ticket.
func TestBuildKeepsAttributes(t *testing.T) {
	t.Parallel()
	s := testService(t, testRuleSet)
	body := `{"party":["a","b"],"mode":"2v2","skill":1650,"region":"eu","latencies_ms":{"eu":20},
	  "attributes":{"strings":{"platform":"console"},"sets":{"maps":["nuke"]},"numbers":{"level":30},"tags":["newbie"]}}`
	var req Request
	if err := events.DecodeStrict("request", []byte(body), &req); err != nil {
		t.Fatal(err)
	}
	tk, shard, err := s.build(s.RuleSet(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := &events.Attributes{Strings: map[string]string{"platform": "console"}, Sets: map[string][]string{"maps": {"nuke"}},
		Numbers: map[string]float64{"level": 30}, Tags: []string{"newbie"}}
	if !reflect.DeepEqual(tk.Attributes, want) || shard != (events.Shard{Region: "eu", Tier: "gold"}) {
		t.Fatalf("ticket %+v attributes %+v in %v, want %+v", tk, tk.Attributes, shard, want)
	}
}

// The rule set in force decides: a mode added by a reload is taken, a mode
// removed is refused, and the modes offered follow.
func TestBuildFollowsTheRuleSetInForce(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/rules.json"
	write := func(modes string) {
		t.Helper()
		if err := writeFile(path, `{"modes":[`+modes+`]}`); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"name":"1v1","teams":2,"team_size":1,"max_wait":"5m"}`)
	cur, err := rules.Open(path, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{cfg: Config{Regions: events.DefaultRegions, Tiers: events.DefaultTiers, Rules: cur}, now: time.Now}
	skill := 1
	req := Request{PlayerID: "a", Mode: "3v3", Skill: &skill, Region: "eu"}
	if _, _, err := s.build(s.RuleSet(), req); err == nil {
		t.Fatal("3v3 taken before the rule set has it")
	}
	write(`{"name":"3v3","teams":2,"team_size":3,"max_wait":"5m"}`)
	if !cur.Reload() {
		t.Fatal("the changed rule set was not put in force")
	}
	if _, _, err := s.build(s.RuleSet(), req); err != nil {
		t.Fatalf("3v3 refused after the reload: %v", err)
	}
	req.Mode = "1v1"
	if _, _, err := s.build(s.RuleSet(), req); err == nil {
		t.Fatal("1v1 taken after the reload removed it")
	}
	if got := s.RuleSet().Modes(); !reflect.DeepEqual(got, []string{"3v3"}) {
		t.Fatalf("modes %q after the reload, want [3v3]", got)
	}
}

// A request's hash covers its attributes: an idempotency key reused with
// other attributes is another request (ErrIdempotencyReuse), not a repeat.
func TestRequestHashCoversAttributes(t *testing.T) {
	t.Parallel()
	skill := 1
	a := Request{PlayerID: "a", Skill: &skill, Region: "eu", Attributes: &events.Attributes{Strings: map[string]string{"platform": "pc"}}}
	b := a
	b.Attributes = &events.Attributes{Strings: map[string]string{"platform": "console"}}
	c := a
	c.Attributes = nil
	if requestHash(a) == requestHash(b) || requestHash(a) == requestHash(c) {
		t.Fatal("requests that differ only in attributes hash the same")
	}
	again := a
	again.Attributes = &events.Attributes{Strings: map[string]string{"platform": "pc"}}
	if requestHash(a) != requestHash(again) {
		t.Fatal("the same request hashes differently")
	}
	if data, _ := json.Marshal(a); !strings.Contains(string(data), `"attributes":{"strings":{"platform":"pc"}}`) {
		t.Fatalf("request encodes as %s", data)
	}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
