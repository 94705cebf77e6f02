package events

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Tier is a named skill range. A skill belongs to the tier with the greatest
// Min that is not above it.
type Tier struct {
	Name string
	Min  int
}

// Tiers is an ordered list of tiers; the first one's Min is the lowest skill
// that is accepted at all.
type Tiers []Tier

// DefaultTiers are bronze below 1200, silver 1200-1599, gold 1600-1999 and
// platinum 2000 and up.
var DefaultTiers = Tiers{
	{Name: "bronze", Min: MinSkill},
	{Name: "silver", Min: 1200},
	{Name: "gold", Min: 1600},
	{Name: "platinum", Min: 2000},
}

// DefaultRegions are the regions a deployment serves unless configured.
var DefaultRegions = Regions{"eu", "us", "asia"}

// ParseTiers reads "bronze:0,silver:1200,gold:1600,platinum:2000": names with
// the lowest skill of each, in increasing order.
func ParseTiers(s string) (Tiers, error) {
	var ts Tiers
	for _, part := range strings.Split(s, ",") {
		name, min, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("tier %q: want name:min_skill", part)
		}
		n, err := strconv.Atoi(min)
		if err != nil {
			return nil, fmt.Errorf("tier %q: min skill: %w", part, err)
		}
		ts = append(ts, Tier{Name: name, Min: n})
	}
	return ts, ts.Validate()
}

// String is the inverse of [ParseTiers].
func (ts Tiers) String() string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.Name + ":" + strconv.Itoa(t.Min)
	}
	return strings.Join(parts, ",")
}

// Validate checks that names are valid subject tokens, unique, and that the
// ranges increase strictly.
func (ts Tiers) Validate() error {
	if len(ts) == 0 {
		return fmt.Errorf("no tiers")
	}
	seen := map[string]bool{}
	for i, t := range ts {
		if err := checkToken(t.Name); err != nil {
			return fmt.Errorf("tier name: %w", err)
		}
		if seen[t.Name] {
			return fmt.Errorf("tier %q appears twice", t.Name)
		}
		seen[t.Name] = true
		if i > 0 && t.Min <= ts[i-1].Min {
			return fmt.Errorf("tier %q starts at %d, not above %q at %d", t.Name, t.Min, ts[i-1].Name, ts[i-1].Min)
		}
	}
	return nil
}

// For returns the tier of a skill, or false when the skill is below the
// first tier.
func (ts Tiers) For(skill int) (string, bool) {
	i := sort.Search(len(ts), func(i int) bool { return ts[i].Min > skill })
	if i == 0 {
		return "", false
	}
	return ts[i-1].Name, true
}

// Has reports whether name is one of the tiers.
func (ts Tiers) Has(name string) bool {
	for _, t := range ts {
		if t.Name == name {
			return true
		}
	}
	return false
}

// Set parses s like [ParseTiers]; it makes *Tiers a flag.Value.
func (ts *Tiers) Set(s string) error {
	parsed, err := ParseTiers(s)
	if err != nil {
		return err
	}
	*ts = parsed
	return nil
}

// Regions is a list of region names; *Regions is a flag.Value taking
// "eu,us,asia".
type Regions []string

func (r Regions) String() string { return strings.Join(r, ",") }

// Set parses a comma-separated list of region names.
func (r *Regions) Set(s string) error {
	var out Regions
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if err := checkToken(name); err != nil {
			return fmt.Errorf("region: %w", err)
		}
		if slices.Contains(out, name) {
			return fmt.Errorf("region %q appears twice", name)
		}
		out = append(out, name)
	}
	*r = out
	return nil
}

// Has reports whether name is one of the regions.
func (r Regions) Has(name string) bool { return slices.Contains(r, name) }
