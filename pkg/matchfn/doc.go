// Package matchfn is the contract between the matcher and a match
// function: a studio's own NATS service that proposes a mode's matches
// from a shard's waiting tickets. A mode names its function in the rule
// set (rules.MatchFunction); a studio writes only the function body and
// serves it with Serve.
//
// Endpoint: the function is a NATS micro service (nats.go/micro) named
// after the rule set's service, with one endpoint, "match", on
// events.Subjects.MatchFunction(service) (`matchfunctions.<service>`,
// under the deployment's subject prefix) in queue group "q": run as many
// copies as you like, each request goes to one.
//
// Exchange: the owner of a shard sends, for one mode, a Request of up to
// the mode's max_candidates waiting tickets, oldest first, and waits up
// to the mode's timeout for a Reply. It sends the next request only once
// that one is answered or timed out. As JSON:
//
//	{"schema_version":1,
//	 "mode":{"name":"2v2","teams":2,"team_size":2},
//	 "region":"eu","tier":"gold",
//	 "candidates":[
//	   {"ticket_id":"t1","players":["alice"],"skill":1650,"waited_ms":1200,
//	    "attributes":{"strings":{"platform":"pc"}},"latencies_ms":{"us":90}},
//	   {"ticket_id":"t2","players":["bob","carol"],"skill":1700,"waited_ms":800}]}
//
// and the reply, each proposal the ticket ids of each team:
//
//	{"schema_version":1,"matches":[{"teams":[["t1","t3"],["t2"]]}]}
//
// A function that cannot answer replies with a micro error (Serve does
// it for a Go error; see Error), and the mode falls back to the built-in
// rules or waits, as its on_failure says; so does a timeout or a reply
// that cannot be read.
//
// Trust: the matcher checks every proposal (CheckReply; then, on its
// side, that every ticket still waits in its pool and fits the match by
// the mode's rule set) and commits a good one under the same claims as
// any match, so a ticket ends in at most one match whatever the function
// replies. A proposal names tickets known to the request, each once in
// the whole reply, exactly the mode's teams, each exactly team_size
// players, no player twice; a party is one ticket, so it always stays on
// one team. The rule set binds a function as it binds the built-in
// rules: every ticket must fit the proposal's longest-waiting ticket by
// the skill window and the mode's attribute rules at their waits (a mode
// whose function judges skill alone gives itself a wide skill_window).
// A bad proposal is dropped alone (the others of the reply stand) and
// its tickets wait for the next request. Tickets not proposed simply
// wait: a function may leave any ticket out.
//
// Versions: schema_version is 1. Both sides decode strictly (an unknown
// field is an error), so any change of either payload is a new version;
// a side that meets a version it does not know answers or treats it as
// an error, and the mode's on_failure applies. Limits: a message is at
// most MaxMessageBytes, a request at most MaxCandidates candidates.
package matchfn
