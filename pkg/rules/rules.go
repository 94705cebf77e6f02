package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// Kinds of attribute, as a ticket carries them (events.Attributes).
const (
	KindString = "string" // one value: "strings" in a ticket
	KindSet    = "set"    // several values: "sets"
	KindNumber = "number" // "numbers"
	KindTag    = "tag"    // present or absent: "tags"
)

// Kinds of rule, each for the attribute kinds named.
const (
	RuleEqual    = "equal"    // string, tag: every ticket of a match has the same value
	RuleOverlap  = "overlap"  // set: every ticket shares a member with the anchor
	RuleDistance = "distance" // number: within the rule's limit of the anchor
)

// Balance objectives: how a match's tickets are split into teams.
const (
	// BalanceSkill evens the teams' summed skill (the default).
	BalanceSkill = "skill"
	// BalanceNone keeps arrival order: the first tickets fill the first
	// team (a mode whose teams are not rivals, or a game that balances).
	BalanceNone = "none"
)

// Limits of a rule set.
const (
	// MaxSetValues bounds the declared values of a set attribute: a
	// waiting ticket keeps its set as one 64-bit word.
	MaxSetValues = 64
	maxRules     = 16
)

// Attribute declares one attribute tickets may carry.
type Attribute struct {
	Kind string `json:"kind"`
	// Values are the allowed values of a string or set attribute; empty
	// for a string allows any. A set must declare them.
	Values []string `json:"values,omitempty"`
	// Min and Max bound a number.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// Required: a ticket without it is refused.
	Required bool `json:"required,omitempty"`
}

// Rule compares one attribute between the tickets of a match.
type Rule struct {
	Kind      string `json:"kind"`
	Attribute string `json:"attribute"`
	// Limit is a distance rule's limit, widening with the wait.
	Limit *Widening `json:"limit,omitempty"`
	// DropAfter drops the rule once either ticket has waited this long;
	// zero keeps it.
	DropAfter Duration `json:"drop_after,omitempty"`
}

// Mode is one game mode.
type Mode struct {
	Name string `json:"name"`
	// Teams and TeamSize: 1v1 is 2 teams of 1; a free-for-all of 8 is 8
	// teams of 1. A party is kept on one team, so it can be at most TeamSize.
	Teams    int `json:"teams"`
	TeamSize int `json:"team_size"`
	// MaxWait is how long a ticket waits before it expires.
	MaxWait Duration `json:"max_wait"`
	// Skill is the skill window: two tickets fit when their skills differ
	// by at most the wider of their windows.
	Skill Widening `json:"skill_window"`
	// LatencyMS is the latency budget: a ticket that reports latencies may
	// be matched in any region it reaches within the budget.
	LatencyMS Widening `json:"latency_budget_ms"`
	// Rules compare attributes; every one must hold between each ticket
	// and the anchor, the ticket a match is built around.
	Rules []Rule `json:"rules,omitempty"`
	// Balance is BalanceSkill (default) or BalanceNone.
	Balance string `json:"balance,omitempty"`
	// AcceptsBackfill: a running room of this mode that loses a player
	// asks for another. `backfill` in JSON: rule sets already deployed
	// keep that key.
	AcceptsBackfill bool `json:"backfill,omitempty"`
	// MatchFunction, when set, proposes the mode's matches.
	MatchFunction *MatchFunction `json:"match_function,omitempty"`
	// StartEarly, when set, lets a match open its room before it is
	// full: fewer teams, the rest of the room's seats free (for backfill,
	// when the mode accepts it).
	StartEarly *StartEarly `json:"start_early,omitempty"`

	// attrs are the declarations of Rules' attributes, by rule.
	attrs []Attribute
}

// StartEarly is when a mode's match may open its room with fewer teams
// than the mode has: once its anchor, the ticket it is built around, has
// waited After, a match of MinTeams or more whole teams (each TeamSize
// players) forms when a full one cannot. Its room has the mode's shape
// (events.Match.Teams, TeamSize); the teams no ticket fills start with
// free seats, which a mode with Backfill asks to fill at once.
type StartEarly struct {
	// MinTeams is the fewest teams of a match that starts early: at least
	// 2, fewer than the mode's Teams.
	MinTeams int `json:"min_teams"`
	// After is how long the anchor waits for a full match first: more
	// than zero, less than the mode's MaxWait.
	After Duration `json:"after"`
}

// Players is the number of players in a full match.
func (m *Mode) Players() int { return m.Teams * m.TeamSize }

// Duration is a time.Duration written as "90s" in JSON.
type Duration time.Duration

// UnmarshalJSON reads "90s", "5m". A bad value is a bare
// *json.UnmarshalTypeError: the decoder adds the field's path to that
// type only ("modes.max_wait"), and a wrapped error would lose it.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	err := json.Unmarshal(b, &s)
	v := time.Duration(0)
	if err == nil {
		v, err = time.ParseDuration(s)
	}
	if err != nil {
		return &json.UnmarshalTypeError{Value: fmt.Sprintf("%s (want a duration like \"90s\": %v)", b, err), Type: reflect.TypeFor[Duration]()}
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Default widening: a skill window of 100 that grows by 25 a second to
// 1000 (after 36 s), and a latency budget of 60 ms that grows by 5 ms a
// second to 200 ms.
var (
	DefaultSkill   = Widening{Initial: 100, PerSecond: 25, Max: 1000}
	DefaultLatency = Widening{Initial: 60, PerSecond: 5, Max: 200}
)

// Set is a checked rule set. It is never changed once made: a reload makes
// a new one (Current).
type Set struct {
	attributes map[string]Attribute
	modes      map[string]*Mode
	order      []string
	version    string // Version, computed by build
}

// file is the rule set as written.
type file struct {
	Attributes map[string]Attribute `json:"attributes,omitempty"`
	Modes      []Mode               `json:"modes"`
}

// Default is the rule set without a file: 1v1, 2v2, 5v5 and a free-for-all
// of 8, no attributes.
func Default() *Set {
	mk := func(name string, teams, size int, wait time.Duration) Mode {
		return Mode{Name: name, Teams: teams, TeamSize: size, MaxWait: Duration(wait)}
	}
	s, err := build(file{Modes: []Mode{
		mk("1v1", 2, 1, 5*time.Minute), mk("2v2", 2, 2, 5*time.Minute),
		mk("5v5", 2, 5, 10*time.Minute), mk("ffa", 8, 1, 5*time.Minute),
	}})
	if err != nil {
		panic("rules: the default rule set is wrong: " + err.Error())
	}
	return s
}

// Load reads a rule set file (Parse).
func Load(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rule set: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("rule set %s: %w", path, err)
	}
	return s, nil
}

// Parse reads a rule set strictly (unknown fields are errors) and checks
// it whole, reporting every problem at once.
func Parse(data []byte) (*Set, error) {
	var f file
	if err := events.DecodeStrict("rule set", data, &f); err != nil {
		return nil, err
	}
	return build(f)
}

// build fills defaults and checks a rule set.
func build(f file) (*Set, error) {
	s := &Set{attributes: f.Attributes, modes: map[string]*Mode{}}
	if s.attributes == nil {
		s.attributes = map[string]Attribute{}
	}
	var errs []error
	for name, a := range s.attributes {
		errs = append(errs, checkAttribute(name, a))
	}
	if len(f.Modes) == 0 {
		errs = append(errs, errors.New("modes: none"))
	}
	for i := range f.Modes {
		m := f.Modes[i]
		if _, dup := s.modes[m.Name]; dup {
			errs = append(errs, fmt.Errorf("mode %q appears twice", m.Name))
			continue
		}
		if m.Skill == (Widening{}) {
			m.Skill = DefaultSkill
		}
		if m.LatencyMS == (Widening{}) {
			m.LatencyMS = DefaultLatency
		}
		if m.Balance == "" {
			m.Balance = BalanceSkill
		}
		m.MatchFunction = m.MatchFunction.withDefaults()
		errs = append(errs, s.checkMode(&m))
		s.modes[m.Name] = &m
		s.order = append(s.order, m.Name)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.version = versionOf(s)
	return s, nil
}

func checkAttribute(name string, a Attribute) error {
	var errs []error
	if err := events.CheckToken(name); err != nil {
		errs = append(errs, fmt.Errorf("name: %w", err))
	}
	switch a.Kind {
	case KindString:
	case KindSet:
		if len(a.Values) == 0 || len(a.Values) > MaxSetValues {
			errs = append(errs, fmt.Errorf("a set declares its values, 1 to %d, not %d", MaxSetValues, len(a.Values)))
		}
	case KindNumber, KindTag:
		if len(a.Values) > 0 {
			errs = append(errs, fmt.Errorf("values: only for a string or a set"))
		}
	default:
		errs = append(errs, fmt.Errorf("kind %q: want %s, %s, %s or %s", a.Kind, KindString, KindSet, KindNumber, KindTag))
	}
	if (a.Min != nil || a.Max != nil) && a.Kind != KindNumber {
		errs = append(errs, fmt.Errorf("min and max: only for a number"))
	}
	if a.Min != nil && a.Max != nil && *a.Min > *a.Max {
		errs = append(errs, fmt.Errorf("min %g is above max %g", *a.Min, *a.Max))
	}
	if a.Kind == KindTag && a.Required {
		errs = append(errs, fmt.Errorf("a tag cannot be required: it is present or absent"))
	}
	for i, v := range a.Values {
		switch {
		case v == "" || len(v) > events.MaxAttributeValueLen:
			errs = append(errs, fmt.Errorf("values[%d]: 1 to %d bytes", i, events.MaxAttributeValueLen))
		case slices.Index(a.Values, v) < i:
			errs = append(errs, fmt.Errorf("values[%d]: %q appears twice", i, v))
		}
	}
	return named(fmt.Sprintf("attribute %q", name), errs)
}

// named joins errs, each prefixed with what they are about, so that every
// line of a long report names its mode or attribute.
func named(what string, errs []error) error {
	for i, err := range errs {
		if err != nil {
			errs[i] = fmt.Errorf("%s: %w", what, err)
		}
	}
	return errors.Join(errs...)
}

// ruleKinds maps each rule kind to the attribute kinds it compares.
var ruleKinds = map[string][]string{
	RuleEqual:    {KindString, KindTag},
	RuleOverlap:  {KindSet},
	RuleDistance: {KindNumber},
}

func (s *Set) checkMode(m *Mode) error {
	var errs []error
	if err := events.CheckToken(m.Name); err != nil {
		errs = append(errs, fmt.Errorf("name: %w", err))
	}
	if !play.ValidShape(m.Teams, m.TeamSize) {
		errs = append(errs, fmt.Errorf("%d teams of %d is not a match (2 or more teams, at most %d players)", m.Teams, m.TeamSize, play.MaxPlayers))
	}
	if m.MaxWait <= 0 || time.Duration(m.MaxWait) > events.TicketMaxAge {
		errs = append(errs, fmt.Errorf("max_wait %s: want above 0 and at most %s", time.Duration(m.MaxWait), events.TicketMaxAge))
	}
	errs = append(errs, m.Skill.check("skill_window"), m.LatencyMS.check("latency_budget_ms"))
	m.Skill, m.LatencyMS = m.Skill.within(events.MaxSkill-events.MinSkill), m.LatencyMS.within(events.MaxLatencyMS)
	if m.Balance != BalanceSkill && m.Balance != BalanceNone {
		errs = append(errs, fmt.Errorf("balance %q: want %q or %q", m.Balance, BalanceSkill, BalanceNone))
	}
	if len(m.Rules) > maxRules {
		errs = append(errs, fmt.Errorf("rules: %d, at most %d", len(m.Rules), maxRules))
	}
	m.attrs = make([]Attribute, len(m.Rules))
	for i, r := range m.Rules {
		a, declared := s.attributes[r.Attribute]
		m.attrs[i] = a
		field := fmt.Sprintf("rules[%d]", i)
		switch {
		case !declared:
			errs = append(errs, fmt.Errorf("%s: attribute %q is not declared in attributes", field, r.Attribute))
		case ruleKinds[r.Kind] == nil:
			errs = append(errs, fmt.Errorf("%s: kind %q: want %s, %s or %s", field, r.Kind, RuleEqual, RuleOverlap, RuleDistance))
		case !slices.Contains(ruleKinds[r.Kind], a.Kind):
			errs = append(errs, fmt.Errorf("%s: %s compares a %s, and %q is a %s", field, r.Kind, strings.Join(ruleKinds[r.Kind], " or "), r.Attribute, a.Kind))
		}
		if (r.Kind == RuleDistance) != (r.Limit != nil) {
			errs = append(errs, fmt.Errorf("%s: a distance rule, and only one, has a limit", field))
		} else if r.Limit != nil {
			errs = append(errs, r.Limit.check(field+".limit"))
		}
		if r.DropAfter < 0 {
			errs = append(errs, fmt.Errorf("%s: drop_after is negative", field))
		}
	}
	errs = append(errs, m.MatchFunction.check()...)
	m.MatchFunction = m.MatchFunction.within(m)
	errs = append(errs, m.StartEarly.check(m)...)
	return named(fmt.Sprintf("mode %q", m.Name), errs)
}

// Mode returns the mode named name.
func (s *Set) Mode(name string) (*Mode, bool) {
	m, ok := s.modes[name]
	return m, ok
}

// Modes lists the modes' names in the file's order.
func (s *Set) Modes() []string { return slices.Clone(s.order) }

// MaxTeamSize is the largest team of any mode: the largest party any mode
// takes.
func (s *Set) MaxTeamSize() int {
	n := 0
	for _, m := range s.modes {
		n = max(n, m.TeamSize)
	}
	return n
}
