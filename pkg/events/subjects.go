package events

import (
	"fmt"
	"strings"
)

// Subject roots. They are unexported on purpose: code outside this package
// asks [Subjects] for a subject and never spells one.
const (
	rootTickets     = "matchmaking"
	rootAllocations = "allocations"
	rootResults     = "results"
	rootDeadLetter  = "deadletter"
	rootCancels     = "cancels"
	rootOffers      = "offers"
	rootBackfills   = "backfills"
	rootFunctions   = "matchfunctions"
)

// Subjects builds every subject of one deployment. The zero value is the
// default deployment, whose subjects have no prefix (`matchmaking.eu.gold`).
// A Prefix lets several deployments share one NATS account: with Prefix
// "staging" the ticket subject becomes `staging.matchmaking.eu.gold` and the
// stream names become `STAGING_TICKETS` and so on.
type Subjects struct {
	// Prefix is one or more subject tokens without wildcards, or "".
	Prefix string
}

// ValidatePrefix reports whether p can be used as a subject prefix.
func ValidatePrefix(p string) error {
	if p == "" {
		return nil
	}
	for _, tok := range strings.Split(p, ".") {
		if err := checkToken(tok); err != nil {
			return fmt.Errorf("prefix %q: %w", p, err)
		}
	}
	return nil
}

func (s Subjects) join(parts ...string) string {
	if s.Prefix != "" {
		parts = append([]string{s.Prefix}, parts...)
	}
	return strings.Join(parts, ".")
}

// Ticket is the subject a ticket of the given shard is published on:
// `matchmaking.<region>.<tier>`.
func (s Subjects) Ticket(region, tier string) string { return s.join(rootTickets, region, tier) }

// AllTickets matches the tickets of every shard.
func (s Subjects) AllTickets() string { return s.join(rootTickets, ">") }

// ParseTicket splits a ticket subject into its region and tier. It is the
// inverse of [Subjects.Ticket] and rejects anything else.
func (s Subjects) ParseTicket(subject string) (region, tier string, err error) {
	rest, ok := strings.CutPrefix(subject, s.join(rootTickets)+".")
	if !ok {
		return "", "", fmt.Errorf("subject %q is not a ticket subject %q", subject, s.Ticket("<region>", "<tier>"))
	}
	region, tier, ok = strings.Cut(rest, ".")
	if !ok || strings.Contains(tier, ".") {
		return "", "", fmt.Errorf("subject %q: want %q", subject, s.Ticket("<region>", "<tier>"))
	}
	if err := checkToken(region); err != nil {
		return "", "", fmt.Errorf("subject %q: region: %w", subject, err)
	}
	if err := checkToken(tier); err != nil {
		return "", "", fmt.Errorf("subject %q: tier: %w", subject, err)
	}
	return region, tier, nil
}

// Offer is where a shard offers a waiting ticket to another shard (the
// same tier of a region its latency budget reaches, or a neighbouring tier
// of its region its skill window reaches): `offers.<region>.<tier>`, read
// as a visitor by that shard's owner.
func (s Subjects) Offer(region, tier string) string { return s.join(rootOffers, region, tier) }

// AllOffers matches the visitors of every shard.
func (s Subjects) AllOffers() string { return s.join(rootOffers, ">") }

// Backfill is where the allocator asks a shard to fill a running room that
// has free seats (see [Backfill]): `backfills.<region>.<tier>`, the shard
// that formed the room's match, read by its owner.
func (s Subjects) Backfill(region, tier string) string { return s.join(rootBackfills, region, tier) }

// AllBackfills matches the backfill requests of every shard.
func (s Subjects) AllBackfills() string { return s.join(rootBackfills, ">") }

// MatchFunction is the endpoint of the match function named service (a
// mode's rules.MatchFunction.Service; package matchfn): the matcher
// sends it requests there, `matchfunctions.<service>`, and the function
// answers them as a NATS micro service in queue group "q".
func (s Subjects) MatchFunction(service string) string { return s.join(rootFunctions, service) }

// AllMatchFunctions matches the endpoints of every match function.
func (s Subjects) AllMatchFunctions() string { return s.join(rootFunctions, ">") }

// Allocation is the subject the matcher publishes a formed match on, for the
// allocator of that region: `allocations.<region>`.
func (s Subjects) Allocation(region string) string { return s.join(rootAllocations, region) }

// AllAllocations matches the allocation requests of every region.
func (s Subjects) AllAllocations() string { return s.join(rootAllocations, ">") }

// Result is a player's own subject, `results.<player_id>`: every outcome of
// every ticket of that player is published there.
func (s Subjects) Result(playerID string) string { return s.join(rootResults, playerID) }

// AllResults matches every player's results (for operators and tests).
func (s Subjects) AllResults() string { return s.join(rootResults, ">") }

// DeadLetter is where input that cannot be processed is recorded, with the
// reason, by the service named source: `deadletter.<source>`.
func (s Subjects) DeadLetter(source string) string { return s.join(rootDeadLetter, source) }

// AllDeadLetters matches every dead letter.
func (s Subjects) AllDeadLetters() string { return s.join(rootDeadLetter, ">") }

// Cancel is where the frontend tells matchers that a ticket of a shard was
// cancelled (core NATS, no stream): `cancels.<region>.<tier>`.
func (s Subjects) Cancel(region, tier string) string { return s.join(rootCancels, region, tier) }

// AllCancels matches the cancel notices of every shard.
func (s Subjects) AllCancels() string { return s.join(rootCancels, ">") }

// CoveringFilter returns a subject filter that covers subject and is built
// only from tokens this package allows (see checkToken) and wildcards of
// our choosing: every other token, such as a literal '*' that a client
// published as part of a subject, becomes '*', and a literal '>' token
// with what follows becomes '>' (the server compares a stored subject's
// wildcards as wildcards, so only '>' covers one). A subject read back
// from a stored message is data: given as it is to a call that takes a
// filter, its wildcards would expand to other subjects. The filter may
// still cover other subjects, so a caller looks at each message's own
// subject and acts only on those equal to subject, by their stream
// sequence.
func CoveringFilter(subject string) string {
	toks := strings.Split(subject, ".")
	for i, tok := range toks {
		if tok == ">" {
			return strings.Join(append(toks[:i], ">"), ".")
		}
		if checkToken(tok) != nil {
			toks[i] = "*"
		}
	}
	return strings.Join(toks, ".")
}

// streamName turns a base stream name into the name for this deployment.
func (s Subjects) streamName(base string) string {
	if s.Prefix == "" {
		return base
	}
	return strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(s.Prefix)) + "_" + base
}

// checkToken accepts one subject token that is safe in every position:
// letters, digits, '-' and '_', at most 64 bytes. This is deliberately
// narrower than what NATS allows, so that ids typed by people or chosen by
// game clients cannot smuggle in wildcards, dots or whitespace.
// CheckID checks an id (a player's, a ticket's) the way the contract
// does wherever one becomes a subject token: 1 to 64 letters, digits, '-'
// and '_', so it can never smuggle in a wildcard or a separator.
func CheckID(id string) error { return checkToken(id) }

// CheckToken reports whether tok may be a subject token and a name in the
// contract (region, tier, mode, player and ticket ids, attribute names):
// 1 to 64 letters, digits, '-' and '_'.
func CheckToken(tok string) error { return checkToken(tok) }

func checkToken(tok string) error {
	if tok == "" {
		return fmt.Errorf("empty")
	}
	if len(tok) > 64 {
		return fmt.Errorf("%d bytes long, at most 64 allowed", len(tok))
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%q has %q at byte %d: only letters, digits, '-' and '_' are allowed", tok, c, i)
		}
	}
	return nil
}
