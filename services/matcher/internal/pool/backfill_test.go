package pool

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// byTeam shows a fill team by team, in the room's team order (which
// matters: the seats are the room's), "-" for a team given nobody.
func byTeam(teams [][]*Entry) string {
	if teams == nil {
		return "none"
	}
	var parts []string
	for _, t := range teams {
		var ts []string
		for _, e := range t {
			ts = append(ts, e.TicketID)
		}
		slices.Sort(ts)
		if len(ts) == 0 {
			ts = []string{"-"}
		}
		parts = append(parts, strings.Join(ts, "+"))
	}
	return strings.Join(parts, " | ")
}

// room is the anchor of a backfill request: the room's mean skill, the
// request waiting since waited before t0, and the room's players.
func room(skill int, waited time.Duration, players ...string) *Entry {
	return &Entry{TicketID: "backfill.r", Skill: skill, Created: t0.Add(-waited).UnixNano(), Players: players}
}

func TestFill(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		teams   int
		size    int
		waiting []*Entry
		anchor  *Entry
		seats   []int
		want    string
	}{
		{"one seat on team 1", 2, 2, []*Entry{tk("near", 1510, 0), tk("far", 1580, 0)}, room(1500, 0), []int{0, 1}, "- | near"},
		{"seats on both teams", 2, 2, []*Entry{tk("a", 1510, 0), tk("b", 1490, 0), tk("c", 1560, 0)}, room(1500, 0), []int{1, 1}, "a | b"},
		{"no ticket in the window", 2, 2, []*Entry{tk("x", 1700, 0)}, room(1500, 0), []int{1, 0}, "none"},
		{"the request's wait widens the window", 2, 2, []*Entry{tk("x", 1700, 0)}, room(1500, 4*time.Second), []int{1, 0}, "x | -"},
		{"the ticket's wait widens the window", 2, 2, []*Entry{tk("x", 1700, 4*time.Second)}, room(1500, 0), []int{1, 0}, "x | -"},
		{"a party fits two free seats of a team", 2, 2, []*Entry{tk("duo", 1500, 0, "d1", "d2")}, room(1500, 0), []int{0, 2}, "- | duo"},
		{"a party is never split", 2, 2, []*Entry{tk("duo", 1500, 0, "d1", "d2")}, room(1500, 0), []int{1, 1}, "none"},
		{"a party too big is passed over", 2, 2, []*Entry{tk("duo", 1500, 0, "d1", "d2"), tk("solo", 1540, 0)}, room(1500, 0), []int{1, 0}, "solo | -"},
		{"a partial fill", 3, 1, []*Entry{tk("b", 1500, 0)}, room(1500, 0), []int{1, 0, 1}, "b | - | -"},
		{"never more than the free seats", 3, 1, []*Entry{tk("a", 1500, 0), tk("b", 1500, 0), tk("c", 1500, 0)}, room(1500, 0), []int{0, 1, 1}, "- | a | b"},
		{"a player once", 2, 2, []*Entry{tk("home", 1500, time.Second, "vic"), tk("visitor", 1500, 0, "vic")}, room(1500, 0), []int{1, 1}, "home | -"},
		{"a ticket at its max wait is left to expire", 2, 2, []*Entry{tk("old", 1500, time.Minute)}, room(1500, 0), []int{1, 0}, "none"},
		{"not a player the room had or was sent", 2, 2, []*Entry{tk("left", 1500, time.Second, "dave"), tk("duo", 1500, time.Second, "x", "erin"), tk("new", 1520, 0)},
			room(1500, 0, "alice", "dave", "erin"), []int{0, 2}, "- | new"},
		{"no free seat", 2, 2, []*Entry{tk("a", 1500, 0)}, room(1500, 0), []int{0, 0}, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(mode(tt.teams, tt.size))
			for _, e := range tt.waiting {
				p.Add(e)
			}
			seats := slices.Clone(tt.seats)
			got := p.Fill(tt.anchor, tt.seats, t0)
			if s := byTeam(got); s != tt.want {
				t.Fatalf("Fill = %s, want %s", s, tt.want)
			}
			if !slices.Equal(seats, tt.seats) {
				t.Fatalf("Fill changed the request's seats: %v, was %v", tt.seats, seats)
			}
			if got != nil && len(got) != len(tt.seats) {
				t.Fatalf("%d teams, want the room's %d", len(got), len(tt.seats))
			}
			taken := 0
			for i, team := range got {
				n := 0
				for _, e := range team {
					n += len(e.Players)
					if p.Contains(e) {
						t.Errorf("%s taken and still waiting", e.TicketID)
					}
				}
				if n > tt.seats[i] {
					t.Errorf("team %d given %d players for %d free seats", i, n, tt.seats[i])
				}
				taken += len(team)
			}
			if p.Len() != len(tt.waiting)-taken {
				t.Errorf("%d waiting after the fill, want %d", p.Len(), len(tt.waiting)-taken)
			}
		})
	}
}

// TestFillKeepsTheRules: the room's attributes (its first ticket's) are
// judged against each ticket by the mode's rules, as a match's anchor's
// are: a pc room takes the pc player, not the xbox one nearer in skill,
// until the rule is dropped; a level rule keeps far levels out.
func TestFillKeepsTheRules(t *testing.T) {
	t.Parallel()
	s := ruleSet(t,
		`"name": "crossplay-2v2", "team_size": 2, "rules": [{"kind": "equal", "attribute": "platform", "drop_after": "30s"}]`,
		`"name": "level-2v2", "team_size": 2, "rules": [{"kind": "distance", "attribute": "level", "limit": {"initial": 5, "per_second": 0, "max": 5}}]`,
	)
	tests := []struct {
		name, mode, room string
		waited           time.Duration
		waiting          map[string]string // id: attributes; skill 1500 + 10 per id in order
		order            []string
		want             string
	}{
		{"the same platform only", "crossplay-2v2", `{"strings":{"platform":"pc"}}`, 0,
			map[string]string{"xbox": `{"strings":{"platform":"xbox"}}`, "pc": `{"strings":{"platform":"pc"}}`}, []string{"xbox", "pc"}, "- | pc"},
		{"no one of the platform", "crossplay-2v2", `{"strings":{"platform":"pc"}}`, 0,
			map[string]string{"xbox": `{"strings":{"platform":"xbox"}}`}, []string{"xbox"}, "none"},
		{"the rule dropped for the request's wait", "crossplay-2v2", `{"strings":{"platform":"pc"}}`, 31 * time.Second,
			map[string]string{"xbox": `{"strings":{"platform":"xbox"}}`}, []string{"xbox"}, "- | xbox"},
		{"levels within the limit", "level-2v2", `{"numbers":{"level":30}}`, 0,
			map[string]string{"far": `{"numbers":{"level":50}}`, "near": `{"numbers":{"level":33}}`}, []string{"far", "near"}, "- | near"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ruleMode(t, s, tt.mode)
			p := New(m)
			for i, id := range tt.order {
				p.Add(with(t, m, tk(id, 1500+10*i, 0), tt.waiting[id]))
			}
			anchor := with(t, m, room(1500, tt.waited), tt.room)
			if got := byTeam(p.Fill(anchor, []int{0, 1}, t0)); got != tt.want {
				t.Fatalf("Fill = %s, want %s", got, tt.want)
			}
		})
	}
}
