package pool

import (
	"errors"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

func TestTake(t *testing.T) {
	t.Parallel()
	set, err := rules.Parse([]byte(`{"attributes": {"platform": {"kind": "string"}}, "modes": [
		{"name": "2v2", "teams": 2, "team_size": 2, "max_wait": "5m",
		 "skill_window": {"initial": 100, "per_second": 50, "max": 1000},
		 "rules": [{"kind": "equal", "attribute": "platform"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := set.Mode("2v2")
	now := time.Unix(1_800_000_000, 0)
	ticket := func(id string, skill int, waited time.Duration, platform string) *Entry {
		e := &Entry{TicketID: id, Players: []string{"p" + id}, Skill: skill, Created: now.Add(-waited).UnixNano()}
		if err := e.SetAttributes(m, &events.Attributes{Strings: map[string]string{"platform": platform}}); err != nil {
			t.Fatal(err)
		}
		return e
	}
	for _, tc := range []struct {
		name string
		// make fills a pool and returns the proposal.
		make func(p *Pool) [][]*Entry
		want error // nil: taken
	}{
		{"fits", func(p *Pool) [][]*Entry {
			a, b, c, d := ticket("a", 1000, 0, "pc"), ticket("b", 1050, 0, "pc"), ticket("c", 1020, 0, "pc"), ticket("d", 1090, 0, "pc")
			add(p, a, b, c, d)
			return [][]*Entry{{a, d}, {b, c}}
		}, nil},
		{"gone", func(p *Pool) [][]*Entry {
			a, b, c, d := ticket("a", 1000, 0, "pc"), ticket("b", 1050, 0, "pc"), ticket("c", 1020, 0, "pc"), ticket("d", 1090, 0, "pc")
			add(p, a, b, c)
			return [][]*Entry{{a, d}, {b, c}}
		}, ErrNotWaiting},
		{"another entry of the same ticket", func(p *Pool) [][]*Entry {
			a, b, c, d := ticket("a", 1000, 0, "pc"), ticket("b", 1050, 0, "pc"), ticket("c", 1020, 0, "pc"), ticket("d", 1090, 0, "pc")
			add(p, a, b, c, ticket("d", 1090, 0, "pc"))
			return [][]*Entry{{a, d}, {b, c}}
		}, ErrNotWaiting},
		{"skill apart", func(p *Pool) [][]*Entry {
			a, b, c, d := ticket("a", 1000, 0, "pc"), ticket("b", 1050, 0, "pc"), ticket("c", 1020, 0, "pc"), ticket("d", 1400, 0, "pc")
			add(p, a, b, c, d)
			return [][]*Entry{{a, d}, {b, c}}
		}, ErrUnfit},
		{"skill apart but the oldest waited", func(p *Pool) [][]*Entry {
			a, b, c, d := ticket("a", 1000, 0, "pc"), ticket("b", 1050, 0, "pc"), ticket("c", 1200, 3*time.Second, "pc"), ticket("d", 1400, 0, "pc")
			add(p, a, b, c, d)
			return [][]*Entry{{a, d}, {b, c}}
		}, nil},
		{"attribute rule", func(p *Pool) [][]*Entry {
			a, b, c, d := ticket("a", 1000, 0, "pc"), ticket("b", 1050, 0, "pc"), ticket("c", 1020, 0, "xbox"), ticket("d", 1090, 0, "pc")
			add(p, a, b, c, d)
			return [][]*Entry{{a, d}, {b, c}}
		}, ErrUnfit},
		{"one entry twice", func(p *Pool) [][]*Entry {
			a, b, c := ticket("a", 1000, 0, "pc"), ticket("b", 1050, 0, "pc"), ticket("c", 1020, 0, "pc")
			add(p, a, b, c)
			return [][]*Entry{{a, a}, {b, c}}
		}, errors.New("twice")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := New(m)
			teams := tc.make(p)
			before := p.Len()
			err := p.Take(teams, now)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == nil:
				if p.Len() != before-4 {
					t.Fatalf("pool has %d tickets, want %d", p.Len(), before-4)
				}
				for _, team := range teams {
					for _, e := range team {
						if _, ok := p.Get(e.TicketID); ok {
							t.Fatalf("%s still waiting", e.TicketID)
						}
					}
				}
			case err == nil:
				t.Fatal("taken")
			case tc.want == ErrNotWaiting || tc.want == ErrUnfit:
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
			}
			if tc.want != nil && p.Len() != before {
				t.Fatalf("a refused proposal changed the pool: %d tickets, was %d", p.Len(), before)
			}
			if tc.want != nil && len(p.Oldest(before)) != before {
				t.Fatal("the arrival list no longer holds every ticket")
			}
		})
	}
}

func add(p *Pool, es ...*Entry) {
	for _, e := range es {
		p.Add(e)
	}
}
