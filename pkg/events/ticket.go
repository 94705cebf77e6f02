package events

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// SchemaVersion is the version of every payload this package writes. A
// payload without one is read as version 1; any other version is rejected.
const SchemaVersion = 1

// Limits of a ticket. They bound what one message can make a matcher hold.
const (
	DefaultMode   = "1v1"
	MinSkill      = 0
	MaxSkill      = 10000
	MaxPartySize  = 16
	MaxLatencyMS  = 10000
	MaxClockSkew  = time.Minute
	maxLatencyMap = 32
)

// Ticket is a request by one player or one party to be matched. It is
// published on [Subjects.Ticket]; the subject says the region and the tier.
//
// Example, as typed into `nats pub matchmaking.eu.gold`:
//
//	{"player_id":"alice","mode":"1v1","skill":1650}
type Ticket struct {
	SchemaVersion int `json:"schema_version"`
	// TicketID identifies the ticket for its whole life. Optional when a
	// ticket is published by hand: then [DeriveTicketID] names it.
	TicketID string `json:"ticket_id,omitempty"`
	// PlayerID is set for a single player; Party for a party. Exactly one.
	PlayerID string   `json:"player_id,omitempty"`
	Party    []string `json:"party,omitempty"`
	// Mode names the game mode; "" means [DefaultMode].
	Mode string `json:"mode"`
	// Skill is the player's rating, or the party's, in [MinSkill, MaxSkill].
	Skill int `json:"skill"`
	// LatenciesMS is the measured round trip per region, if the client knows.
	LatenciesMS map[string]int `json:"latencies_ms,omitempty"`
	// Attributes are what the game says beyond skill and region; the
	// rule set (pkg/rules) says which a mode accepts and compares.
	Attributes *Attributes `json:"attributes,omitempty"`
	// CreatedAt is when the player asked; optional by hand, then the
	// JetStream message time is used.
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// ticketWire tells a missing field from a zero one.
type ticketWire struct {
	SchemaVersion *int           `json:"schema_version"`
	TicketID      *string        `json:"ticket_id"`
	PlayerID      *string        `json:"player_id"`
	Party         []string       `json:"party"`
	Mode          *string        `json:"mode"`
	Skill         *int           `json:"skill"`
	LatenciesMS   map[string]int `json:"latencies_ms"`
	Attributes    *Attributes    `json:"attributes"`
	CreatedAt     *time.Time     `json:"created_at"`
}

// TicketFor is a ticket a service publishes again on its players' behalf
// (an offer to another shard, a requeue after no game server was free):
// one player is PlayerID, more are a Party, as the frontend would have
// written it. It keeps the ticket's attributes and latencies, so the
// rules judge it as they did the first time.
func TicketFor(mt MatchTicket, mode string) Ticket {
	t := Ticket{SchemaVersion: SchemaVersion, TicketID: mt.TicketID, Mode: mode, Skill: mt.Skill, CreatedAt: mt.CreatedAt,
		LatenciesMS: mt.LatenciesMS, Attributes: mt.Attributes}
	players := mt.Players
	if len(players) == 1 {
		t.PlayerID = players[0]
	} else {
		t.Party = players
	}
	return t
}

// Players returns the ids of everyone on the ticket.
func (t *Ticket) Players() []string {
	if t.PlayerID != "" {
		return []string{t.PlayerID}
	}
	return t.Party
}

// DecodeTicket reads a ticket strictly: unknown fields, wrong types, missing
// required fields and impossible values are all reported, each by field name.
// Defaults are filled in (schema version, mode). TicketID and CreatedAt may be
// left empty; the receiver fills them from the message (see [DeriveTicketID]).
func DecodeTicket(data []byte) (Ticket, error) {
	var w ticketWire
	if err := DecodeStrict("ticket", data, &w); err != nil {
		return Ticket{}, err
	}
	t := Ticket{SchemaVersion: SchemaVersion, Mode: DefaultMode, Party: w.Party, LatenciesMS: w.LatenciesMS, Attributes: w.Attributes}
	fe := &FieldErrors{Kind: "ticket"}
	if w.SchemaVersion != nil {
		t.SchemaVersion = *w.SchemaVersion
	}
	if w.TicketID != nil {
		t.TicketID = *w.TicketID
		if t.TicketID == "" {
			fe.Add("ticket_id", "empty; leave it out to have one derived")
		}
	}
	if w.PlayerID != nil {
		t.PlayerID = *w.PlayerID
		if t.PlayerID == "" {
			fe.Add("player_id", "empty")
		}
	}
	if w.Mode != nil {
		t.Mode = *w.Mode
	}
	if w.Skill == nil {
		fe.Add("skill", "required")
	} else {
		t.Skill = *w.Skill
	}
	if w.CreatedAt != nil {
		t.CreatedAt = *w.CreatedAt
	}
	t.validate(fe, w.PlayerID == nil && w.Party == nil)
	if err := fe.Err(); err != nil {
		return Ticket{}, err
	}
	return t, nil
}

// Validate checks a ticket built in code (the frontend builds them from HTTP
// requests) by the same rules as [DecodeTicket].
func (t *Ticket) Validate() error {
	fe := &FieldErrors{Kind: "ticket"}
	t.validate(fe, t.PlayerID == "" && t.Party == nil)
	return fe.Err()
}

func (t *Ticket) validate(fe *FieldErrors, noPlayers bool) {
	fe.version(t.SchemaVersion)
	if t.TicketID != "" {
		fe.Token("ticket_id", t.TicketID)
	}
	switch {
	case noPlayers:
		fe.Add("player_id", "required (or party)")
	case t.PlayerID != "" && t.Party != nil:
		fe.Add("party", "set together with player_id; give one of them")
	case t.PlayerID != "":
		fe.Token("player_id", t.PlayerID)
	case t.Party != nil:
		if len(t.Party) == 0 || len(t.Party) > MaxPartySize {
			fe.Add("party", "has %d players, want 1 to %d", len(t.Party), MaxPartySize)
		}
		seen := make(map[string]bool, len(t.Party))
		for i, p := range t.Party {
			field := "party[" + strconv.Itoa(i) + "]"
			if fe.Token(field, p) && seen[p] {
				fe.Add(field, "player %q is in the party twice", p)
			}
			seen[p] = true
		}
	}
	fe.Token("mode", t.Mode)
	if t.Skill < MinSkill || t.Skill > MaxSkill {
		fe.Add("skill", "%d is out of range [%d, %d]", t.Skill, MinSkill, MaxSkill)
	}
	if len(t.LatenciesMS) > maxLatencyMap {
		fe.Add("latencies_ms", "has %d regions, at most %d allowed", len(t.LatenciesMS), maxLatencyMap)
	}
	for region, ms := range t.LatenciesMS {
		field := "latencies_ms." + region
		if err := checkToken(region); err != nil {
			fe.Add("latencies_ms", "region: %v", err)
		} else if ms < 0 || ms > MaxLatencyMS {
			fe.Add(field, "%d is out of range [0, %d]", ms, MaxLatencyMS)
		}
	}
	t.Attributes.validate(fe)
	if !t.CreatedAt.IsZero() && (t.CreatedAt.Year() < 2000 || t.CreatedAt.Year() > 9999) {
		fe.Add("created_at", "%s is not a plausible time", t.CreatedAt.Format(time.RFC3339))
	}
}

// CheckShard verifies that a ticket belongs to the shard it was published on:
// a known region, a known tier, and a skill inside that tier.
func (t *Ticket) CheckShard(region, tier string, regions Regions, tiers Tiers) error {
	fe := &FieldErrors{Kind: "ticket"}
	if !slices.Contains(regions, region) {
		fe.Add("subject", "unknown region %q, want one of %v", region, regions)
	}
	if !tiers.Has(tier) {
		fe.Add("subject", "unknown tier %q, want one of %s", tier, tiers)
	} else if got, ok := tiers.For(t.Skill); !ok || got != tier {
		fe.Add("skill", "%d belongs to tier %q, not %q", t.Skill, got, tier)
	}
	return fe.Err()
}

// CreatedAtSlack is how much older than its mode's max wait a ticket's
// created_at may be when it reaches the tickets stream: how late a ticket
// queued again by an allocator (no game server free, or the room it was
// to fill gone) may come back with its created_at kept. Its match waited
// in the matcher until it formed (at most the max wait) and then in the
// allocator: retries within a delivery, a few nakked deliveries (another
// request allocating it, NATS away for a moment), a pending record of a
// dead allocator taken over after AllocatorReservationStale. Five minutes covers
// that many times over. A match held longer (the allocations stream cut
// off for minutes: its deliveries are not bounded) brings its tickets
// back past it: they are rejected and their players told "failed" (past
// its max wait, a ticket would expire at once anyway); none is matched
// with a window it never waited for.
const CreatedAtSlack = 5 * time.Minute

// BoundCreated checks a ticket's created_at against the time the tickets
// stream stored its message (stored, the server's clock, which no client
// sets) and maxWait, the max wait of the ticket's mode. created_at is the
// client's word, and it decides how far the ticket's skill window and
// latency budget have widened and when it expires, so it is bounded:
//
//   - left out: the ticket counts as created when it was stored;
//   - after stored, by at most MaxClockSkew (a client clock a little
//     ahead): it counts as created when it was stored;
//   - after stored by more than MaxClockSkew: rejected (a *ValidationError
//     on created_at; the matcher dead-letters it and tells its players);
//   - before stored by more than maxWait + CreatedAtSlack: rejected alike,
//     rather than expired at the first sweep or matched with a window
//     it never waited for;
//   - otherwise it is kept as it is: a ticket queued again keeps its wait.
//
// stored is the same on every redelivery of a message, so a ticket is
// judged the same way each time.
func (t *Ticket) BoundCreated(stored time.Time, maxWait time.Duration) error {
	stored = stored.UTC()
	oldest := stored.Add(-(maxWait + CreatedAtSlack))
	switch {
	case t.CreatedAt.IsZero():
		t.CreatedAt = stored
	case t.CreatedAt.After(stored.Add(MaxClockSkew)):
		fe := &FieldErrors{Kind: "ticket"}
		fe.Add("created_at", "%s is in the future: more than %s after the ticket reached the stream at %s",
			t.CreatedAt.Format(time.RFC3339Nano), MaxClockSkew, stored.Format(time.RFC3339Nano))
		return fe.Err()
	case t.CreatedAt.After(stored):
		t.CreatedAt = stored
	case t.CreatedAt.Before(oldest):
		fe := &FieldErrors{Kind: "ticket"}
		fe.Add("created_at", "%s is too old: more than the mode's max wait %s plus %s before the ticket reached the stream at %s",
			t.CreatedAt.Format(time.RFC3339Nano), maxWait, CreatedAtSlack, stored.Format(time.RFC3339Nano))
		return fe.Err()
	}
	return nil
}

// DeriveTicketID names a ticket that was published without a ticket_id. The
// id depends only on the stored message (subject, stream sequence, the time
// JetStream stored it, and its bytes), so every redelivery of that message
// is the same ticket; two messages with the same bytes are two tickets; and
// a stream that is recreated (sequences start again) yields new ids.
func DeriveTicketID(subject string, streamSeq uint64, stored time.Time, data []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%d\n%d\n", subject, streamSeq, stored.UnixNano())
	h.Write(data)
	return "t" + hex.EncodeToString(h.Sum(nil)[:12])
}
