// Package modes describes the game modes a matcher knows: teams, team
// size, how long a ticket may wait, and how its skill window and latency
// budget widen while it waits. Modes come from a JSON file (see Load) or
// the built-in defaults.
package modes

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

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
}

// Widening is a limit that grows with waiting time: Initial at first, then
// PerSecond more for every second waited, up to Max.
type Widening struct {
	Initial   int `json:"initial"`
	PerSecond int `json:"per_second"`
	Max       int `json:"max"`
}

// At is the limit after waiting waited.
func (w Widening) At(waited time.Duration) int {
	v := w.Initial + int(float64(w.PerSecond)*waited.Seconds())
	return min(max(v, w.Initial), w.Max)
}

// Players is the number of players in a full match.
func (m Mode) Players() int { return m.Teams * m.TeamSize }

// Duration is a time.Duration written as "90s" in JSON.
type Duration time.Duration

// UnmarshalJSON reads "90s", "5m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"90s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Set is the set of modes, by name.
type Set map[string]Mode

// Default widening: a skill window of 100 that grows by 25 a second to
// 1000 (after 36 s), and a latency budget of 60 ms that grows by 5 ms a
// second to 200 ms.
var (
	DefaultSkill   = Widening{Initial: 100, PerSecond: 25, Max: 1000}
	DefaultLatency = Widening{Initial: 60, PerSecond: 5, Max: 200}
)

// Defaults are the modes known without a file.
func Defaults() Set {
	mk := func(name string, teams, size int, wait time.Duration) Mode {
		return Mode{Name: name, Teams: teams, TeamSize: size, MaxWait: Duration(wait), Skill: DefaultSkill, LatencyMS: DefaultLatency}
	}
	return Set{
		"1v1": mk("1v1", 2, 1, 5*time.Minute),
		"2v2": mk("2v2", 2, 2, 5*time.Minute),
		"5v5": mk("5v5", 2, 5, 10*time.Minute),
		"ffa": mk("ffa", 8, 1, 5*time.Minute),
	}
}

// Load reads a JSON file holding a list of modes. A mode that leaves out
// skill_window or latency_budget_ms gets the defaults.
func Load(path string) (Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("modes file: %w", err)
	}
	list, err := events.DecodeStrictList[Mode]("modes", "modes", data)
	if err != nil {
		return nil, fmt.Errorf("modes file %s: %w", path, err)
	}
	set := Set{}
	var errs []error
	for _, m := range list {
		if _, dup := set[m.Name]; dup {
			errs = append(errs, fmt.Errorf("mode %q appears twice", m.Name))
		}
		if m.Skill == (Widening{}) {
			m.Skill = DefaultSkill
		}
		if m.LatencyMS == (Widening{}) {
			m.LatencyMS = DefaultLatency
		}
		set[m.Name] = m
	}
	errs = append(errs, set.Validate())
	return set, errors.Join(errs...)
}

// Validate reports every impossible mode.
func (s Set) Validate() error {
	var errs []error
	if len(s) == 0 {
		errs = append(errs, errors.New("no modes"))
	}
	for name, m := range s {
		if m.Name != name || name == "" {
			errs = append(errs, fmt.Errorf("mode %q: name %q", name, m.Name))
		}
		if m.Teams < 2 || m.TeamSize < 1 || m.Players() > 100 {
			errs = append(errs, fmt.Errorf("mode %q: %d teams of %d is not a match", name, m.Teams, m.TeamSize))
		}
		if m.MaxWait <= 0 {
			errs = append(errs, fmt.Errorf("mode %q: max_wait must be positive", name))
		}
		for what, w := range map[string]Widening{"skill_window": m.Skill, "latency_budget_ms": m.LatencyMS} {
			if w.Initial < 0 || w.PerSecond < 0 || w.Max < w.Initial {
				errs = append(errs, fmt.Errorf("mode %q: %s %+v must have 0 <= initial <= max and per_second >= 0", name, what, w))
			}
		}
	}
	return errors.Join(errs...)
}
