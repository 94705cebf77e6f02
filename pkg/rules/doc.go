// Package rules is the rule set: the one statement of what a game's modes
// are and what makes a good match in each. The frontend and the matcher
// read the same file through this package, so a ticket the matcher would
// reject is refused at the door with the same field named (Set.Check).
//
// A rule set is a JSON file (schema: Schema, ruleset.schema.json):
//
//	{
//	  "attributes": {
//	    "platform": {"kind": "string", "values": ["pc", "xbox", "ps5"], "required": true},
//	    "maps":     {"kind": "set", "values": ["dust", "nuke", "inferno"]},
//	    "level":    {"kind": "number", "min": 1, "max": 100},
//	    "newbie":   {"kind": "tag"}
//	  },
//	  "modes": [
//	    {"name": "ranked-1v1", "teams": 2, "team_size": 1, "max_wait": "5m",
//	     "skill_window": {"initial": 50, "per_second": 10, "max": 300},
//	     "rules": [
//	       {"kind": "equal", "attribute": "platform"},
//	       {"kind": "overlap", "attribute": "maps", "drop_after": "30s"},
//	       {"kind": "distance", "attribute": "level", "limit": {"initial": 5, "per_second": 1, "max": 20}}
//	     ]}
//	  ]
//	}
//
// Attributes are declared once for the whole rule set (a ticket may carry
// only declared ones, of the declared kind and values); each mode's rules
// compare them. Every rule may be dropped after a wait (drop_after), and a
// distance limit widens with the wait like the skill window: the
// expansions that let a thin queue still match. Two tickets are judged by
// the longer of their two waits, as the skill window takes the wider of
// their two windows.
//
// Reading a file never half-applies: Load and Parse return a whole
// checked set or an error naming every problem, and Current keeps the last
// good set when a changed file is bad.
package rules
