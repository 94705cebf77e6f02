package rules

import _ "embed" // for Schema

// Schema is the JSON Schema (draft 2020-12) of a rule set file, for a
// studio's editor and CI to check a file before it is deployed. It states
// the fields, kinds, enumerations and single-field bounds that Parse
// accepts; what a schema cannot say (a rule's attribute declared and of a
// kind the rule compares, teams x team_size at most play.MaxPlayers, min at most
// max, max_wait at most events.TicketMaxAge, unique mode names, start_early
// within the mode's teams and max_wait) only Parse checks. The tests keep the two in step: every field of the Go types is
// in the schema, and the examples pass both.
//
//go:embed ruleset.schema.json
var Schema []byte
