package matchfn

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// DecodeRequest reads a request strictly: unknown fields, wrong types and
// impossible values are reported, each by field name, in an
// *events.ValidationError (errors.Is(err, events.ErrInvalid)). Each
// candidate is checked as a ticket is (events.Ticket.Validate).
func DecodeRequest(data []byte) (Request, error) {
	var r Request
	if err := decodeStrict("match function request", data, &r); err != nil {
		return Request{}, err
	}
	c := &checker{kind: "match function request"}
	if r.SchemaVersion == 0 {
		r.SchemaVersion = SchemaVersion
	}
	c.version(r.SchemaVersion)
	c.token("mode.name", r.Mode.Name)
	m := r.Mode
	if m.Teams < 2 || m.TeamSize < 1 || m.Teams > rules.MaxPlayers || m.TeamSize > rules.MaxPlayers || m.Teams*m.TeamSize > rules.MaxPlayers {
		c.add("mode", "%d teams of %d is not a match (2 or more teams, at most %d players)", m.Teams, m.TeamSize, rules.MaxPlayers)
	}
	c.token("region", r.Region)
	c.token("tier", r.Tier)
	if len(r.Candidates) > MaxCandidates {
		c.add("candidates", "has %d, at most %d allowed", len(r.Candidates), MaxCandidates)
		return Request{}, c.err()
	}
	seen := make(map[string]bool, len(r.Candidates))
	for i := range r.Candidates {
		field := "candidates[" + strconv.Itoa(i) + "]"
		cd := &r.Candidates[i]
		c.candidate(field, cd, m.Name)
		if seen[cd.TicketID] {
			c.add(field+".ticket_id", "%q appears twice", cd.TicketID)
		}
		seen[cd.TicketID] = true
	}
	if err := c.err(); err != nil {
		return Request{}, err
	}
	return r, nil
}

// candidate checks one candidate as the ticket it stands for.
func (c *checker) candidate(field string, cd *Candidate, mode string) {
	if cd.WaitedMS < 0 {
		c.add(field+".waited_ms", "%d is negative", cd.WaitedMS)
	}
	if cd.TicketID == "" {
		c.add(field+".ticket_id", "required")
	}
	if len(cd.Players) == 0 {
		c.add(field+".players", "required, 1 to %d players", events.MaxPartySize)
		return
	}
	t := events.Ticket{SchemaVersion: events.SchemaVersion, TicketID: cd.TicketID, Mode: mode, Skill: cd.Skill,
		LatenciesMS: cd.LatenciesMS, Attributes: cd.Attributes, Party: cd.Players}
	var ve *events.ValidationError
	if err := t.Validate(); errors.As(err, &ve) {
		for _, f := range ve.Fields {
			// A candidate's players are a ticket's party.
			name := strings.Replace(f.Field, "party", "players", 1)
			c.add(field+"."+name, "%s", f.Reason)
		}
	}
}

// DecodeReply reads a reply strictly, as DecodeRequest reads a request.
// It checks the reply's shape only; whether its proposals fit the request
// is CheckReply's to say.
func DecodeReply(data []byte) (Reply, error) {
	var r Reply
	if err := decodeStrict("match function reply", data, &r); err != nil {
		return Reply{}, err
	}
	c := &checker{kind: "match function reply"}
	if r.SchemaVersion == 0 {
		r.SchemaVersion = SchemaVersion
	}
	c.version(r.SchemaVersion)
	if len(r.Matches) > MaxCandidates {
		c.add("matches", "has %d, at most %d allowed", len(r.Matches), MaxCandidates)
		return Reply{}, c.err()
	}
	for i, p := range r.Matches {
		field := "matches[" + strconv.Itoa(i) + "].teams"
		if len(p.Teams) > rules.MaxPlayers {
			c.add(field, "has %d teams, at most %d allowed", len(p.Teams), rules.MaxPlayers)
			continue
		}
		for j, team := range p.Teams {
			tf := field + "[" + strconv.Itoa(j) + "]"
			if len(team) > rules.MaxPlayers {
				c.add(tf, "has %d tickets, at most %d allowed", len(team), rules.MaxPlayers)
				continue
			}
			for k, id := range team {
				c.token(tf+"["+strconv.Itoa(k)+"]", id)
			}
		}
	}
	if err := c.err(); err != nil {
		return Reply{}, err
	}
	return r, nil
}

// maxFieldErrors bounds the problems one error lists: a reply of a
// hundred thousand bad ids is reported by its first few.
const maxFieldErrors = 20

// checker collects the problems of one payload, as events reports a
// ticket's.
type checker struct {
	kind string
	list []events.FieldError
	more int
}

func (c *checker) add(field, format string, args ...any) {
	if len(c.list) >= maxFieldErrors {
		c.more++
		return
	}
	c.list = append(c.list, events.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (c *checker) token(field, v string) {
	if err := events.CheckToken(v); err != nil {
		c.add(field, "%v", err)
	}
}

func (c *checker) version(v int) {
	if v != SchemaVersion {
		c.add("schema_version", "version %d is not supported, want %d", v, SchemaVersion)
	}
}

func (c *checker) err() error {
	if len(c.list) == 0 {
		return nil
	}
	if c.more > 0 {
		c.list = append(c.list, events.FieldError{Reason: fmt.Sprintf("and %d more problems", c.more)})
	}
	return &events.ValidationError{Kind: c.kind, Fields: c.list}
}

// decodeStrict is events.DecodeStrict with this exchange's larger bound
// (a request of a thousand candidates is far above events.MaxPayloadBytes).
func decodeStrict(kind string, data []byte, v any) error {
	return events.DecodeStrictUpTo(kind, MaxMessageBytes, data, v)
}
