package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Version names the rule set's content: the same for two sets that say
// the same, however their files were spelled (whitespace, key order, a
// default written out), another for a set that says anything else. The
// frontend stamps each ticket it publishes with the version it checked it
// under (events.HeaderRules), so a matcher that refuses the ticket can
// tell a rule set still on its way to it from a ticket that breaks the
// rules. Computed once, when the set is made.
func (s *Set) Version() string { return s.version }

// versionOf hashes the set as build left it (defaults filled in), written
// canonically: encoding/json writes struct fields in declaration order
// and map keys sorted. 64 bits of SHA-256 tell a handful of rule sets
// apart; a collision would only judge a ticket at once, as without the
// header.
func versionOf(s *Set) string {
	f := file{Attributes: s.attributes, Modes: make([]Mode, 0, len(s.order))}
	for _, name := range s.order {
		f.Modes = append(f.Modes, *s.modes[name])
	}
	data, err := json.Marshal(f)
	if err != nil {
		panic("rules: a checked rule set does not encode: " + err.Error())
	}
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:8])
}
