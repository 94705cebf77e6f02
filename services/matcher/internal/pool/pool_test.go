package pool

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

var t0 = time.Unix(1_800_000_000, 0)

// mode is a mode without attribute rules.
func mode(teams, size int) *rules.Mode {
	return &rules.Mode{Name: "m", Teams: teams, TeamSize: size, MaxWait: rules.Duration(time.Minute),
		Skill: rules.Widening{Initial: 100, PerSecond: 50, Max: 1000}, Balance: rules.BalanceSkill}
}

// wide is m with the widest skill window an int holds.
func wide(m *rules.Mode) *rules.Mode {
	m.Skill = rules.Widening{Initial: 100, PerSecond: 50, Max: math.MaxInt}
	return m
}

// tk is a ticket created waited before t0.
func tk(id string, skill int, waited time.Duration, players ...string) *Entry {
	if len(players) == 0 {
		players = []string{"p-" + id}
	}
	return &Entry{TicketID: id, Players: players, Skill: skill, Created: t0.Add(-waited).UnixNano()}
}

func ids(teams [][]*Entry) string {
	if teams == nil {
		return "none"
	}
	// Teams have no order and neither do tickets within a team.
	var parts []string
	for _, t := range teams {
		var ts []string
		for _, e := range t {
			ts = append(ts, e.TicketID)
		}
		slices.Sort(ts)
		parts = append(parts, strings.Join(ts, "+"))
	}
	slices.Sort(parts)
	return strings.Join(parts, " | ")
}

func TestMatchAround(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mode    *rules.Mode
		waiting []*Entry
		anchor  *Entry
		want    string
	}{
		{"closest skill wins", mode(2, 1), []*Entry{tk("far", 1580, 0), tk("near", 1510, 0)}, tk("a", 1500, 0), "a | near"},
		{"oldest among equals", mode(2, 1), []*Entry{tk("old", 1505, 5*time.Second), tk("new", 1505, 0)}, tk("a", 1500, 0), "a | old"},
		{"outside both windows", mode(2, 1), []*Entry{tk("x", 1700, 0)}, tk("a", 1500, 0), "none"},
		{"the waiter's wider window admits", mode(2, 1), []*Entry{tk("patient", 1700, 4*time.Second)}, tk("a", 1500, 0), "a | patient"},
		{"the anchor's wider window admits", mode(2, 1), []*Entry{tk("x", 1700, 0)}, tk("a", 1500, 4*time.Second), "a | x"},
		{"window stops at max", mode(2, 1), []*Entry{tk("x", 2600, time.Hour)}, tk("a", 1500, time.Hour), "none"},
		// A window past the skill range (a mode made without its rule
		// set's check) searches the range: Max+BucketWidth wrapped, and
		// the search ran not once.
		{"the widest window", wide(mode(2, 1)), []*Entry{tk("x", 1500, 0)}, tk("a", 1500, 0), "a | x"},
		{"the widest window reaches every skill", wide(mode(2, 1)), []*Entry{tk("x", 10000, time.Hour)}, tk("a", 0, time.Hour), "a | x"},
		{"2v2 keeps a party together", mode(2, 2), []*Entry{tk("duo", 1500, 0, "d1", "d2"), tk("s1", 1510, 0), tk("s2", 1490, 0)}, tk("a", 1500, 0), "a+s1 | duo"},
		{"party too big for the room left is skipped", mode(2, 2), []*Entry{tk("d1", 1500, 0, "x1", "x2"), tk("d2", 1500, 0, "y1", "y2"), tk("s", 1500, 0)}, tk("a", 1500, 0, "a1", "a2"), "a | d1"},
		{"not enough players", mode(2, 2), []*Entry{tk("s1", 1500, 0)}, tk("a", 1500, 0), "none"},
		{"ffa of 4", mode(4, 1), []*Entry{tk("b", 1490, 0), tk("c", 1520, 0), tk("d", 1550, 0), tk("e", 1900, 0)}, tk("a", 1500, 0), "a | b | c | d"},
		// A player's own visitor copy of another ticket, or a party with a
		// player already chosen, is never a partner: one player plays once.
		{"never against themself", mode(2, 1), []*Entry{tk("visitor", 1500, time.Second, "vic")}, tk("home", 1500, 0, "vic"), "none"},
		{"a player once per match", mode(2, 1), []*Entry{tk("twin", 1500, time.Second, "vic"), tk("other", 1550, 0)}, tk("home", 1500, 0, "vic"), "home | other"},
		{"a party sharing a player is skipped", mode(2, 2), []*Entry{tk("d1", 1500, time.Second, "a1", "x"), tk("d2", 1500, 0, "y1", "y2"), tk("s", 1500, 0)}, tk("a", 1500, 0, "a1", "a2"), "a | d2"},
		{"ffa skips a player seen", mode(3, 1), []*Entry{tk("b", 1500, time.Second, "b"), tk("b2", 1500, time.Second, "b"), tk("c", 1500, 0)}, tk("a", 1500, 0), "a | b | c"},
		{"5v5 balances skill", mode(2, 5), []*Entry{
			tk("p9", 1590, 0), tk("p8", 1580, 0), tk("p7", 1570, 0), tk("p6", 1560, 0), tk("p5", 1550, 0),
			tk("p4", 1540, 0), tk("p3", 1530, 0), tk("p2", 1520, 0), tk("p1", 1510, 0)}, tk("p0", 1500, 0),
			"p0+p3+p4+p7+p8 | p1+p2+p5+p6+p9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(tt.mode)
			for _, e := range tt.waiting {
				p.Add(e)
			}
			p.Add(tt.anchor)
			got := p.MatchAround(tt.anchor, t0)
			if ids(got) != tt.want {
				t.Fatalf("got %s, want %s", ids(got), tt.want)
			}
			if got != nil {
				for _, team := range got {
					for _, e := range team {
						if p.Contains(e) {
							t.Fatalf("matched %s still waiting", e.TicketID)
						}
					}
				}
			} else if p.Len() != len(tt.waiting)+1 {
				t.Fatalf("a failed match changed the pool: %d", p.Len())
			}
		})
	}
}

func TestRemoveExpiredOldest(t *testing.T) {
	t.Parallel()
	p := New(mode(2, 1))
	for i, w := range []time.Duration{2 * time.Minute, 90 * time.Second, 10 * time.Second, 0} {
		p.Add(tk(fmt.Sprint(i), 1500+i*300, w))
	}
	var gone []string
	p.Expired(t0, func(e *Entry) { gone = append(gone, e.TicketID) })
	if strings.Join(gone, ",") != "0,1" || p.Len() != 2 {
		t.Fatalf("expired %v, left %d", gone, p.Len())
	}
	old := p.Oldest(10)
	if len(old) != 2 || old[0].TicketID != "2" {
		t.Fatalf("oldest %v", old)
	}
	if _, ok := p.Remove("2"); !ok || p.Contains(old[0]) {
		t.Fatal("remove")
	}
}

// Due names the tickets Expired would take, in its order, and leaves
// them waiting (a sweep tries each once more for a match first).
func TestDueLeavesTheDueWaiting(t *testing.T) {
	t.Parallel()
	p := New(mode(2, 1))
	for i, w := range []time.Duration{90 * time.Second, 2 * time.Minute, 10 * time.Second, 3 * time.Minute} {
		p.Add(tk(fmt.Sprint(i), 1500+i*300, w))
	}
	if _, ok := p.Remove("3"); !ok {
		t.Fatal("remove")
	}
	var due []string
	for _, e := range p.Due(t0) {
		due = append(due, e.TicketID)
	}
	if strings.Join(due, ",") != "1,0" || p.Len() != 3 {
		t.Fatalf("due %v, left %d; want 1,0 and all three waiting", due, p.Len())
	}
	var gone []string
	p.Expired(t0, func(e *Entry) { gone = append(gone, e.TicketID) })
	if strings.Join(gone, ",") != strings.Join(due, ",") {
		t.Fatalf("expired %v, due said %v", gone, due)
	}
	if d := p.Due(t0); len(d) != 0 {
		t.Fatalf("due after the expiry: %d", len(d))
	}
}

// A ticket that comes back after younger ones (redelivered after a
// takeover, queued again after its match was given up, a visitor) expires
// at its own max wait, not when the younger ones ahead of it do: it
// expired up to a max wait late in the chaos runs. And a ticket that left
// the pool leaves Expired's file too (no garbage kept a max wait).
func TestATicketThatComesBackLateExpiresOnTime(t *testing.T) {
	t.Parallel()
	p := New(mode(2, 1))
	for i, w := range []time.Duration{10 * time.Second, 5 * time.Second} {
		p.Add(tk(fmt.Sprint("young", i), 1500, w))
	}
	p.Add(tk("back", 1500, 2*time.Minute))
	p.Add(tk("gone", 1500, 3*time.Minute))
	p.Add(tk("newest", 1500, 0))
	if _, ok := p.Remove("gone"); !ok {
		t.Fatal("remove")
	}
	var gone []string
	p.Expired(t0, func(e *Entry) { gone = append(gone, e.TicketID) })
	if strings.Join(gone, ",") != "back" || p.Len() != 3 {
		t.Fatalf("expired %v, left %d; want back alone", gone, p.Len())
	}
	filed := 0
	for _, es := range p.due {
		filed += len(es)
	}
	if filed != p.Len() {
		t.Fatalf("%d tickets filed for expiry, %d waiting", filed, p.Len())
	}
	gone = gone[:0]
	p.Expired(t0.Add(time.Minute-5*time.Second), func(e *Entry) { gone = append(gone, e.TicketID) })
	if strings.Join(gone, ",") != "young0,young1" {
		t.Fatalf("a minute later, expired %v; want young0,young1", gone)
	}
}

// A reload that shrinks a mode's teams leaves a party taken in under the
// larger ones waiting: it fits no team now, so it is never packed into a
// match (packing it panicked the matcher), and it expires as usual.
func TestPartyLargerThanReloadedTeamsIsNeverMatched(t *testing.T) {
	p := New(mode(2, 4))
	party := tk("party", 1600, time.Second, "a", "b", "c", "d")
	p.Add(party)
	p.SetMode(mode(2, 3))
	p.Add(tk("e", 1600, time.Second, "e"))
	p.Add(tk("f", 1600, time.Second, "f"))
	if teams := p.MatchAround(party, t0); teams != nil {
		t.Fatalf("the party of 4 was matched in teams of 3: %s", ids(teams))
	}
	if p.Len() != 3 {
		t.Fatalf("%d tickets wait, want 3", p.Len())
	}
}

// TestSweepGoesRoundThePool: a sweep retried only the oldest tickets, so
// with that many waiting unmatched ahead (each of a build no one else
// plays) two tickets behind them that fit each other once their windows
// widen (300 apart: 8 s) were never retried, and expired. The sweep's
// other half goes round the rest of the pool.
func TestSweepGoesRoundThePool(t *testing.T) {
	t.Parallel()
	set, err := rules.Parse([]byte(`{"attributes": {"build": {"kind": "string", "required": true}},
		"modes": [{"name": "m", "teams": 2, "team_size": 1, "max_wait": "5m", "rules": [{"kind": "equal", "attribute": "build"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := set.Mode("m")
	p := New(m)
	add := func(i, skill int, build string, created time.Time) *Entry {
		e := entry(i, skill, created)
		if err := e.SetAttributes(m, &events.Attributes{Strings: map[string]string{"build": build}}); err != nil {
			t.Fatal(err)
		}
		p.Add(e)
		return e
	}
	const anchors = 100
	for i := range anchors {
		add(i, 1150, fmt.Sprintf("old-%d", i), t0)
	}
	at := t0.Add(time.Second)
	for _, e := range []*Entry{add(1001, 100, "1.4.2", at), add(1002, 400, "1.4.2", at)} {
		if p.MatchAround(e, at) != nil {
			t.Fatal("matched on arrival, 300 apart")
		}
	}
	for s := 1; s <= 60*4; s++ { // a minute of sweeps, every 250 ms
		now := at.Add(time.Duration(s) * 250 * time.Millisecond)
		for _, a := range p.Sweep(anchors) {
			if p.Contains(a) && p.MatchAround(a, now) != nil {
				if waited := now.Sub(at); waited > 10*time.Second {
					t.Fatalf("the pair behind the oldest matched after %s, fitting after 8 s", waited)
				}
				return
			}
		}
	}
	t.Fatal("the pair behind the oldest was never retried")
}

// TestSweepTakesEachTicketInTurn: past the oldest half, each sweep goes on
// where the last stopped, wrapping at the newest, and a ticket it would
// have taken next that leaves the pool leaves the turn with it.
func TestSweepTakesEachTicketInTurn(t *testing.T) {
	t.Parallel()
	p := New(mode(2, 1))
	var es []*Entry
	for i := range 10 {
		e := tk(fmt.Sprintf("t%d", i), i*1000, time.Duration(10-i)*time.Second)
		p.Add(e)
		es = append(es, e)
	}
	names := func(es []*Entry) string {
		var s []string
		for _, e := range es {
			s = append(s, e.TicketID)
		}
		return strings.Join(s, " ")
	}
	for i, want := range []string{"t0 t1 t2 t3", "t0 t1 t4 t5", "t0 t1 t6 t7", "t0 t1 t8 t9", "t0 t1 t2 t3"} {
		if got := names(p.Sweep(4)); got != want {
			t.Fatalf("sweep %d: %s, want %s", i, got, want)
		}
	}
	p.Remove(es[4].TicketID) // next in turn
	if got := names(p.Sweep(4)); got != "t0 t1 t5 t6" {
		t.Fatalf("after the next in turn left: %s", got)
	}
	if got := names(p.Sweep(20)); got != "t0 t1 t2 t3 t5 t6 t7 t8 t9" {
		t.Fatalf("more wanted than wait: %s", got)
	}
}

// TestAFullMatchIsPackedWhereTheScanMissesIt: the scan places each
// candidate on the team with most room, first come first placed, and
// never takes one back: in a 4v4, a party of 3 taken first left room for
// a 1 that no one had, and four parties of 2 waited out their max wait
// around it, though they made 2+2 against 2+2.
func TestAFullMatchIsPackedWhereTheScanMissesIt(t *testing.T) {
	t.Parallel()
	p := New(mode(2, 4))
	p.Add(tk("trio", 1500, 3*time.Second, "t1", "t2", "t3"))
	for i := range 3 {
		p.Add(tk(fmt.Sprintf("duo%d", i), 1500+i, 2*time.Second, fmt.Sprintf("d%da", i), fmt.Sprintf("d%db", i)))
	}
	anchor := tk("anchor", 1500, time.Second, "a1", "a2")
	p.Add(anchor)
	teams := p.MatchAround(anchor, t0)
	if got := ids(teams); teams == nil || strings.Contains(got, "trio") || len(teams) != 2 || len(teams[0]) != 2 || len(teams[1]) != 2 {
		t.Fatalf("match %s, want the four parties of 2, two a team", got)
	}
	if p.Len() != 1 {
		t.Fatalf("%d left waiting, want the trio alone", p.Len())
	}
}
