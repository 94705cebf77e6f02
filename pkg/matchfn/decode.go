package matchfn

import (
	"errors"
	"strconv"
	"strings"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
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
	c := &events.FieldErrors{Kind: "match function request"}
	if r.SchemaVersion == 0 {
		r.SchemaVersion = SchemaVersion
	}
	checkVersion(c, r.SchemaVersion)
	c.Token("mode.name", r.Mode.Name)
	m := r.Mode
	if !play.ValidShape(m.Teams, m.TeamSize) {
		c.Add("mode", "%d teams of %d is not a match (2 or more teams, at most %d players)", m.Teams, m.TeamSize, play.MaxPlayers)
	}
	c.Token("region", r.Region)
	c.Token("tier", r.Tier)
	if len(r.Candidates) > MaxCandidates {
		c.Add("candidates", "has %d, at most %d allowed", len(r.Candidates), MaxCandidates)
		return Request{}, c.Err()
	}
	seen := make(map[string]bool, len(r.Candidates))
	for i := range r.Candidates {
		field := "candidates[" + strconv.Itoa(i) + "]"
		cd := &r.Candidates[i]
		checkCandidate(c, field, cd, m.Name)
		if seen[cd.TicketID] {
			c.Add(field+".ticket_id", "%q appears twice", cd.TicketID)
		}
		seen[cd.TicketID] = true
	}
	if err := c.Err(); err != nil {
		return Request{}, err
	}
	return r, nil
}

// candidate checks one candidate as the ticket it stands for.
func checkCandidate(c *events.FieldErrors, field string, cd *Candidate, mode string) {
	if cd.WaitedMS < 0 {
		c.Add(field+".waited_ms", "%d is negative", cd.WaitedMS)
	}
	if cd.TicketID == "" {
		c.Add(field+".ticket_id", "required")
	}
	if len(cd.Players) == 0 {
		c.Add(field+".players", "required, 1 to %d players", events.MaxPartySize)
		return
	}
	t := events.Ticket{SchemaVersion: events.SchemaVersion, TicketID: cd.TicketID, Mode: mode, Skill: cd.Skill,
		LatenciesMS: cd.LatenciesMS, Attributes: cd.Attributes, Party: cd.Players}
	var ve *events.ValidationError
	if err := t.Validate(); errors.As(err, &ve) {
		for _, f := range ve.Fields {
			// A candidate's players are a ticket's party.
			name := strings.Replace(f.Field, "party", "players", 1)
			c.Add(field+"."+name, "%s", f.Reason)
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
	c := &events.FieldErrors{Kind: "match function reply"}
	if r.SchemaVersion == 0 {
		r.SchemaVersion = SchemaVersion
	}
	checkVersion(c, r.SchemaVersion)
	if len(r.Matches) > MaxCandidates {
		c.Add("matches", "has %d, at most %d allowed", len(r.Matches), MaxCandidates)
		return Reply{}, c.Err()
	}
	for i, p := range r.Matches {
		field := "matches[" + strconv.Itoa(i) + "].teams"
		if len(p.Teams) > play.MaxPlayers {
			c.Add(field, "has %d teams, at most %d allowed", len(p.Teams), play.MaxPlayers)
			continue
		}
		for j, team := range p.Teams {
			tf := field + "[" + strconv.Itoa(j) + "]"
			if len(team) > play.MaxPlayers {
				c.Add(tf, "has %d tickets, at most %d allowed", len(team), play.MaxPlayers)
				continue
			}
			for k, id := range team {
				c.Token(tf+"["+strconv.Itoa(k)+"]", id)
			}
		}
	}
	if err := c.Err(); err != nil {
		return Reply{}, err
	}
	return r, nil
}

// checkVersion reports a schema version other than this exchange's.
func checkVersion(c *events.FieldErrors, v int) {
	if v != SchemaVersion {
		c.Add("schema_version", "version %d is not supported, want %d", v, SchemaVersion)
	}
}

// decodeStrict is events.DecodeStrict with this exchange's larger bound
// (a request of a thousand candidates is far above events.MaxPayloadBytes).
func decodeStrict(kind string, data []byte, v any) error {
	return events.DecodeStrictUpTo(kind, MaxMessageBytes, data, v)
}
