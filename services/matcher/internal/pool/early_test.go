package pool

import (
	"fmt"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// earlyMode is mode(teams, size) starting early with minTeams after 10 s.
func earlyMode(teams, size, minTeams int) *rules.Mode {
	m := mode(teams, size)
	m.StartEarly = &rules.StartEarly{MinTeams: minTeams, After: rules.Duration(10 * time.Second)}
	return m
}

// singles are n tickets s0..s<n-1> of skill 1500 + i that waited waited.
func singles(n int, waited time.Duration) []*Entry {
	out := make([]*Entry, n)
	for i := range out {
		out[i] = tk(fmt.Sprintf("s%d", i), 1500+i, waited)
	}
	return out
}

// TestMatchAroundStartEarly: once the anchor has waited the mode's
// start_early.after, the largest match of whole teams (at least
// min_teams, fewer than the mode's) forms when a full one cannot; before,
// or below min_teams, nothing forms and the pool is unchanged.
func TestMatchAroundStartEarly(t *testing.T) {
	t.Parallel()
	balanceNone := earlyMode(3, 2, 2)
	balanceNone.Balance = rules.BalanceNone
	tests := []struct {
		name    string
		mode    *rules.Mode
		waiting []*Entry
		anchor  *Entry
		want    string
		teams   int // len of the teams returned, when a match forms
	}{
		{"ffa: 5 before 10 s: nothing", earlyMode(8, 1, 4), singles(4, 9*time.Second), tk("a", 1500, 9*time.Second), "none", 0},
		{"ffa: 5 at 10 s: 5 teams", earlyMode(8, 1, 4), singles(4, 0), tk("a", 1500, 10*time.Second), "a | s0 | s1 | s2 | s3", 5},
		{"ffa: 7 after: 7 teams", earlyMode(8, 1, 4), singles(6, 0), tk("a", 1500, 20*time.Second), "a | s0 | s1 | s2 | s3 | s4 | s5", 7},
		{"ffa: 3 never", earlyMode(8, 1, 4), singles(2, 50*time.Second), tk("a", 1500, 50*time.Second), "none", 0},
		{"ffa: a full match is preferred", earlyMode(8, 1, 4), singles(8, 0), tk("a", 1500, 20*time.Second),
			"a | s0 | s1 | s2 | s3 | s4 | s5 | s6", 8},
		{"ffa: without start_early nothing", mode(8, 1), singles(6, 0), tk("a", 1500, 50*time.Second), "none", 0},
		{"ffa: only tickets that fit", earlyMode(8, 1, 4), append(singles(3, 0), tk("far", 2900, 0)), tk("a", 1500, 10*time.Second),
			"a | s0 | s1 | s2", 4},
		{"ffa: a player once", earlyMode(8, 1, 4), append(singles(2, 0), tk("twin", 1500, 0, "p-s0")), tk("a", 1500, 10*time.Second), "none", 0},
		// 2v2v2 opening as a 2v2: whole teams only, parties kept together.
		{"2v2v2: four singles make two teams", earlyMode(3, 2, 2), singles(3, 0), tk("a", 1500, 10*time.Second), "a+s1 | s0+s2", 2},
		{"2v2v2: a party and two singles", earlyMode(3, 2, 2), []*Entry{tk("duo", 1500, 0, "d1", "d2"), tk("s", 1500, 0)}, tk("a", 1500, 10*time.Second),
			"a+s | duo", 2},
		{"2v2v2: a party anchors", earlyMode(3, 2, 2), []*Entry{tk("s0", 1500, 0), tk("s1", 1500, 0)}, tk("duo", 1500, 10*time.Second, "d1", "d2"),
			"duo | s0+s1", 2},
		{"2v2v2: two parties", earlyMode(3, 2, 2), []*Entry{tk("duo", 1500, 0, "d1", "d2"), tk("s", 1500, 0)}, tk("a", 1500, 10*time.Second, "a1", "a2"),
			"a | duo", 2},
		{"2v2v2: the anchor alone on no team", earlyMode(3, 2, 2), []*Entry{tk("d1", 1500, 0, "x1", "x2"), tk("d2", 1500, 0, "y1", "y2")},
			tk("a", 1500, 10*time.Second), "none", 0},
		{"2v2v2: one team is not a match", earlyMode(3, 2, 2), []*Entry{tk("s", 1500, 0)}, tk("duo", 1500, 10*time.Second, "d1", "d2"), "none", 0},
		{"2v2v2: three singles", earlyMode(3, 2, 2), singles(2, 0), tk("a", 1500, 10*time.Second), "none", 0},
		{"2v2v2: full when it can", earlyMode(3, 2, 2), append(singles(4, 0), tk("duo", 1500, 0, "d1", "d2")), tk("a", 1500, 10*time.Second),
			"a+s1 | duo | s0+s2", 3},
		// A 4x3 opening with 3 teams: parties of 2 and singles packed exactly.
		{"4x3: parties packed exactly", earlyMode(4, 3, 3), []*Entry{tk("d1", 1500, 0, "x1", "x2"), tk("d2", 1500, 0, "y1", "y2"),
			tk("d3", 1500, 0, "z1", "z2"), tk("s0", 1500, 0), tk("s1", 1500, 0)}, tk("a", 1500, 10*time.Second), "a+d1 | d2+s0 | d3+s1", 3},
		// The balance objective over the teams that play.
		{"2v2v2: balanced", earlyMode(3, 2, 2), []*Entry{tk("b", 1010, 0), tk("c", 1020, 0), tk("d", 1030, 0)}, tk("a", 1000, 10*time.Second),
			"a+d | b+c", 2},
		{"2v2v2: arrival order", balanceNone, []*Entry{tk("b", 1010, 3*time.Second), tk("c", 1020, 2*time.Second), tk("d", 1030, time.Second)},
			tk("a", 1000, 10*time.Second), "a+b | c+d", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := New(tt.mode)
			for _, e := range tt.waiting {
				p.Add(e)
			}
			p.Add(tt.anchor)
			got := p.MatchAround(tt.anchor, t0)
			if ids(got) != tt.want {
				t.Fatalf("got %s, want %s", ids(got), tt.want)
			}
			if got == nil {
				if p.Len() != len(tt.waiting)+1 {
					t.Fatalf("no match, yet the pool changed: %d waiting", p.Len())
				}
				return
			}
			if len(got) != tt.teams {
				t.Fatalf("%d teams, want %d", len(got), tt.teams)
			}
			for i, team := range got {
				n := 0
				for _, e := range team {
					n += len(e.Players)
					if p.Contains(e) {
						t.Fatalf("matched %s still waiting", e.TicketID)
					}
				}
				if n != tt.mode.TeamSize {
					t.Fatalf("team %d has %d players, want %d", i, n, tt.mode.TeamSize)
				}
			}
		})
	}
}

// TestSetModeKeepsValuesWhenStartEarlyChanges: start_early says when a
// match forms, not what a ticket's attributes compile to.
func TestSetModeKeepsValuesWhenStartEarlyChanges(t *testing.T) {
	t.Parallel()
	const r = `"rules": [{"kind": "equal", "attribute": "platform"}], "teams": 8`
	m1 := ruleMode(t, ruleSet(t, `"name": "m", `+r), "m")
	m2 := ruleMode(t, ruleSet(t, `"name": "m", "start_early": {"min_teams": 4, "after": "10s"}, `+r), "m")
	if !compilesAlike(m1, m2) || !compilesAlike(m2, m1) {
		t.Fatal("a mode that only adds start_early does not compile alike")
	}
}
