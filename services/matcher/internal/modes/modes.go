// Package modes describes the game modes a matcher knows: how many teams,
// how many players per team, and how long a ticket may wait.
package modes

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
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

// Defaults are the modes known without a file.
func Defaults() Set {
	return Set{
		"1v1": {Name: "1v1", Teams: 2, TeamSize: 1, MaxWait: Duration(5 * time.Minute)},
		"2v2": {Name: "2v2", Teams: 2, TeamSize: 2, MaxWait: Duration(5 * time.Minute)},
		"5v5": {Name: "5v5", Teams: 2, TeamSize: 5, MaxWait: Duration(10 * time.Minute)},
		"ffa": {Name: "ffa", Teams: 8, TeamSize: 1, MaxWait: Duration(5 * time.Minute)},
	}
}

// Load reads a JSON file holding a list of modes.
func Load(path string) (Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("modes file: %w", err)
	}
	var list []Mode
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("modes file %s: %w", path, err)
	}
	set := Set{}
	var errs []error
	for _, m := range list {
		if _, dup := set[m.Name]; dup {
			errs = append(errs, fmt.Errorf("mode %q appears twice", m.Name))
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
	}
	return errors.Join(errs...)
}
