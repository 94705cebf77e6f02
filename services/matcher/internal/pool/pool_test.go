package pool

import (
	"testing"
	"time"
)

func entry(id string, players ...string) *Entry {
	return &Entry{TicketID: id, Players: players, CreatedAt: time.Unix(0, 0)}
}

func ids(teams [][]*Entry) [][]string {
	var out [][]string
	for _, t := range teams {
		var ts []string
		for _, e := range t {
			ts = append(ts, e.TicketID)
		}
		out = append(out, ts)
	}
	return out
}

func TestTakeMatch(t *testing.T) {
	t.Parallel()
	k := Key{"eu", "gold", "2v2"}
	tests := []struct {
		name     string
		entries  []*Entry
		teams    int
		size     int
		want     string
		leftOver int
	}{
		{"1v1 takes the two oldest", []*Entry{entry("a", "a"), entry("b", "b"), entry("c", "c")}, 2, 1, "[[a] [b]]", 1},
		{"not enough", []*Entry{entry("a", "a")}, 2, 1, "[]", 1},
		{"party stays on one team", []*Entry{entry("p", "p1", "p2"), entry("a", "a"), entry("b", "b")}, 2, 2, "[[p] [a b]]", 0},
		{"party that does not fit waits", []*Entry{entry("a", "a"), entry("p", "p1", "p2"), entry("b", "b"), entry("c", "c")}, 2, 2, "[[a b] [p]]", 1},
		{"two parties", []*Entry{entry("p", "p1", "p2"), entry("q", "q1", "q2")}, 2, 2, "[[p] [q]]", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New()
			for _, e := range tt.entries {
				p.Add(k, e)
			}
			got := ids(p.TakeMatch(k, tt.teams, tt.size))
			if s := fmtIDs(got); s != tt.want {
				t.Fatalf("got %s, want %s", s, tt.want)
			}
			if p.Len() != tt.leftOver {
				t.Fatalf("left %d, want %d", p.Len(), tt.leftOver)
			}
			for _, team := range got {
				for _, id := range team {
					if _, ok := p.Get(id); ok {
						t.Fatalf("matched ticket %s still in the pool", id)
					}
				}
			}
		})
	}
}

func fmtIDs(v [][]string) string {
	if v == nil {
		return "[]"
	}
	s := "["
	for i, t := range v {
		if i > 0 {
			s += " "
		}
		s += "["
		for j, id := range t {
			if j > 0 {
				s += " "
			}
			s += id
		}
		s += "]"
	}
	return s + "]"
}

func TestPutRemoveExpired(t *testing.T) {
	t.Parallel()
	k := Key{"eu", "gold", "1v1"}
	p := New()
	p.Add(k, entry("a", "alice"))
	p.Add(k, entry("b", "bob"))
	teams := p.TakeMatch(k, 2, 1)
	p.Put(k, append(teams[0], teams[1]...))
	if id, ok := p.WaitingTicketOf("bob"); !ok || id != "b" || p.Len() != 2 {
		t.Fatalf("Put did not restore: %v %v %d", id, ok, p.Len())
	}
	if _, ok := p.Remove("a"); !ok {
		t.Fatal("Remove a")
	}
	if _, ok := p.WaitingTicketOf("alice"); ok {
		t.Fatal("alice still indexed")
	}
	old := entry("old", "o")
	fresh := &Entry{TicketID: "fresh", Players: []string{"f"}, CreatedAt: time.Unix(100, 0)}
	p.Add(k, old)
	p.Add(k, fresh)
	var gone []string
	p.Expired(time.Unix(60, 0), func(Key) time.Duration { return 50 * time.Second }, func(_ Key, e *Entry) { gone = append(gone, e.TicketID) })
	if len(gone) != 2 || gone[0] != "b" || gone[1] != "old" || p.Len() != 1 {
		t.Fatalf("expired %v, left %d", gone, p.Len())
	}
}
