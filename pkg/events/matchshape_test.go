package events_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// earlyMatch is a free-for-all of 8 started early with 3 players.
func earlyMatch() events.Match {
	return events.Match{SchemaVersion: events.SchemaVersion, MatchID: "m1", Mode: "ffa", Region: "eu", Tier: "gold", Teams: 8, TeamSize: 1,
		Tickets: []events.MatchTicket{{TicketID: "t0", Players: []string{"a"}}, {TicketID: "t1", Players: []string{"b"}, Team: 1},
			{TicketID: "t2", Players: []string{"c"}, Team: 2}}}
}

// TestDecodeMatchShape: the room shape of a match that started early is read
// back, and a shape no mode can have, or that its tickets do not fit,
// is refused with the field named: the allocator sizes a room by it.
func TestDecodeMatchShape(t *testing.T) {
	t.Parallel()
	data, _ := json.Marshal(earlyMatch())
	got, err := events.DecodeMatch(data)
	if err != nil || got.Teams != 8 || got.TeamSize != 1 {
		t.Fatalf("DecodeMatch = %+v, %v", got, err)
	}
	for _, tt := range []struct {
		name   string
		change func(m *events.Match)
		want   string // in the error; "" for none
	}{
		{"a full match has no shape", func(m *events.Match) { m.Teams, m.TeamSize = 0, 0 }, ""},
		{"a 2v2v2 opened as a 2v2", func(m *events.Match) {
			m.Teams, m.TeamSize = 3, 2
			m.Tickets[1].Team, m.Tickets[2].Team = 0, 1
		}, ""},
		{"100 seats", func(m *events.Match) { m.Teams, m.TeamSize = 50, 2 }, ""},
		{"one team", func(m *events.Match) { m.Teams = 1; m.Tickets = m.Tickets[:1] }, "teams"},
		{"teams without team_size", func(m *events.Match) { m.TeamSize = 0 }, "team_size"},
		{"team_size without teams", func(m *events.Match) { m.Teams = 0; m.TeamSize = 1 }, "teams"},
		{"negative teams", func(m *events.Match) { m.Teams = -8 }, "teams"},
		{"101 teams", func(m *events.Match) { m.Teams = 101 }, "teams"},
		{"101 seats", func(m *events.Match) { m.Teams, m.TeamSize = 3, 34 }, "team_size"},
		{"seats overflow", func(m *events.Match) { m.Teams, m.TeamSize = 4, 1<<62 }, "team_size"},
		{"a ticket past the teams", func(m *events.Match) { m.Tickets[2].Team = 8 }, "tickets[2].team"},
		{"a negative team", func(m *events.Match) { m.Tickets[2].Team = -1 }, "tickets[2].team"},
		{"a team over its size", func(m *events.Match) { m.Tickets[2].Team = 1 }, "tickets[2].team"},
		{"a party over the team size", func(m *events.Match) { m.Tickets[0].Players = []string{"a", "z"} }, "tickets[0].team"},
		{"never with backfill", func(m *events.Match) { m.Backfill = &events.MatchBackfill{BackfillID: "r1-b1", MatchID: "r1"} }, "backfill"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := earlyMatch()
			tt.change(&m)
			data, _ := json.Marshal(m)
			_, err := events.DecodeMatch(data)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("DecodeMatch = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}
