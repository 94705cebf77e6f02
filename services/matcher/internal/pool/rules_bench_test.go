package pool

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// benchRules is a rule set a game might have: crossplay kept apart for
// 30 s, a shared map, levels within 5 widening to 20, newbies with
// newbies; the default skill window (100 + 25/s up to 1000).
const benchRules = `{` + testAttributes + `, "modes": [{"name": "ranked", "teams": 2, "team_size": 1, "max_wait": "5m",
	"rules": [
		{"kind": "equal", "attribute": "platform", "drop_after": "30s"},
		{"kind": "overlap", "attribute": "maps"},
		{"kind": "distance", "attribute": "level", "limit": {"initial": 5, "per_second": 1, "max": 20}},
		{"kind": "equal", "attribute": "newbie"}
	]}]}`

func benchMode(b *testing.B, js string) *rules.Mode {
	s, err := rules.Parse([]byte(js))
	if err != nil {
		b.Fatal(err)
	}
	m, ok := s.Mode("ranked")
	if !ok {
		b.Fatal("no mode ranked")
	}
	return m
}

// drawn are attributes drawn by randomAttrs, to pick from: drawing maps
// for two million tickets would cost more memory than the pool.
func drawn(rng *rand.Rand) []*events.Attributes {
	as := make([]*events.Attributes, 4096)
	for i := range as {
		as[i] = randomAttrs(rng)
	}
	return as
}

// fillRules puts n tickets with attributes in the pool, as fill does.
func fillRules(b *testing.B, p *Pool, n int, rng *rand.Rand, attrs func(i int) *events.Attributes) {
	for i := range n {
		e := entry(i, 1600+rng.IntN(400), t0)
		if err := e.SetAttributes(p.Mode(), attrs(i)); err != nil {
			b.Fatal(err)
		}
		p.Add(e)
	}
}

// BenchmarkMatch1MRules is BenchmarkMatch1M with benchRules and
// attributes on every ticket (randomAttrs): one waiting ticket in 36
// fits a new one of the same skill. Giving each ticket its attributes (SetAttributes:
// the JSON the pool keeps and the compiled Values) is timed, as is adding
// both tickets and matching.
func BenchmarkMatch1MRules(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := benchMode(b, benchRules)
	as := drawn(rng)
	pick := func(int) *events.Attributes { return as[rng.IntN(len(as))] }
	p := New(m)
	fillRules(b, p, 1_000_000, rng, pick)
	type ticket struct {
		e *Entry
		a *events.Attributes
	}
	news := make([]ticket, b.N)
	fills := make([]ticket, b.N)
	for i := range b.N {
		news[i] = ticket{entry(2_000_000+i, 1600+rng.IntN(400), t0), pick(i)}
		fills[i] = ticket{entry(4_000_000+i, 1600+rng.IntN(400), t0), pick(i)}
	}
	now := t0.Add(time.Second)
	b.ResetTimer()
	matched := 0
	for i := range b.N {
		f, n := fills[i], news[i]
		if f.e.SetAttributes(m, f.a) != nil || n.e.SetAttributes(m, n.a) != nil {
			b.Fatal("attributes")
		}
		p.Add(f.e)
		p.Add(n.e)
		if p.MatchAround(n.e, now) != nil {
			matched += 2
		}
	}
	b.StopTimer()
	if matched != 2*b.N {
		b.Fatalf("matched %d of %d tickets", matched, 2*b.N)
	}
	b.ReportMetric(float64(matched)/b.Elapsed().Seconds(), "tickets/s")
}

// BenchmarkMiss1MRules is the cost of a ticket that fits nobody, as the
// sweep retries its oldest tickets, in a pool of 1,000,000 (benchRules):
//   - other-platform: nobody waits on the anchor's platform; the scan
//     passes each other class of a bucket by looking at its oldest ticket.
//   - far-level: the anchor's platform is there, but every level is more
//     than a band (20) from the anchor's; passed the same way.
//   - near-level, the worst case: every ticket of the anchor's platform is
//     in the band next to the anchor's, none within the limit; the scan
//     reads each of them within the skill reach.
//
// peers is how many waiting tickets share the anchor's equal rules'
// values (what a miss would read without the level bands).
func BenchmarkMiss1MRules(b *testing.B) {
	level := func(lo, hi int) func(rng *rand.Rand) *events.Attributes {
		return func(rng *rand.Rand) *events.Attributes {
			a := randomAttrs(rng)
			if a != nil {
				a.Numbers["level"] = float64(lo + rng.IntN(hi-lo+1))
			}
			return a
		}
	}
	pc := func(lvl float64) *events.Attributes {
		return &events.Attributes{Strings: map[string]string{"platform": "pc"}, Numbers: map[string]float64{"level": lvl}}
	}
	for _, c := range []struct {
		name   string
		pool   func(rng *rand.Rand) *events.Attributes
		anchor *events.Attributes
	}{
		{"other-platform", func(rng *rand.Rand) *events.Attributes {
			a := randomAttrs(rng)
			if a != nil && a.Strings["platform"] == "ps5" {
				a.Strings["platform"] = "pc"
			}
			return a
		}, &events.Attributes{Strings: map[string]string{"platform": "ps5"}}},
		{"far-level", level(1, 50), pc(100)},
		{"near-level", level(40, 53), pc(60)},
	} {
		b.Run(c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			p := New(benchMode(b, benchRules))
			fillRules(b, p, 1_000_000, rng, func(int) *events.Attributes { return c.pool(rng) })
			anchor := entry(2_000_000, 1800, t0)
			if err := anchor.SetAttributes(p.Mode(), c.anchor); err != nil {
				b.Fatal(err)
			}
			p.Add(anchor)
			now := t0.Add(time.Second)
			peers := 0
			p.Each(func(e *Entry) {
				if e != anchor && p.idx.sameClass(e.Values, band{}, anchor.Values, band{}) {
					peers++
				}
			})
			b.ResetTimer()
			for range b.N {
				if p.MatchAround(anchor, now) != nil {
					b.Fatal("matched")
				}
			}
			b.ReportMetric(float64(peers), "peers")
		})
	}
}

// BenchmarkPoolMemoryRules is BenchmarkPoolMemory with benchRules and
// attributes on every ticket: the heap held per waiting ticket, its
// attributes' JSON and compiled Values included.
func BenchmarkPoolMemoryRules(b *testing.B) {
	for range b.N {
		rng := rand.New(rand.NewPCG(1, 2))
		m := benchMode(b, benchRules)
		as := drawn(rng)
		before := heapInUse()
		p := New(m)
		fillRules(b, p, 1_000_000, rng, func(int) *events.Attributes { return as[rng.IntN(len(as))] })
		after := heapInUse()
		b.ReportMetric(float64(after-before)/float64(p.Len()), "bytes/ticket")
		runtime.KeepAlive(p)
	}
}

// BenchmarkSetMode1M is a rule set reload that changes the rules of a
// pool of 1,000,000 waiting tickets (its maps declared in another order):
// every ticket is compiled again and the index rebuilt. shared draws the
// attributes from 4,096 (one decode each); distinct gives every ticket a
// level of its own (one decode per ticket).
func BenchmarkSetMode1M(b *testing.B) {
	other := benchMode(b, `{"attributes": {
		"platform": {"kind": "string", "values": ["pc", "xbox", "ps5"]},
		"maps": {"kind": "set", "values": ["anubis", "mirage", "inferno", "nuke", "dust"]},
		"level": {"kind": "number", "min": 1, "max": 100},
		"newbie": {"kind": "tag"}
	}`+benchRules[len(`{`+testAttributes):])
	for _, distinct := range []bool{false, true} {
		name := map[bool]string{false: "shared", true: "distinct"}[distinct]
		b.Run(name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			m := benchMode(b, benchRules)
			as := drawn(rng)
			p := New(m)
			fillRules(b, p, 1_000_000, rng, func(i int) *events.Attributes {
				a := as[rng.IntN(len(as))]
				if distinct && a != nil {
					c := *a
					c.Numbers = map[string]float64{"level": 1 + float64(i)/1e4}
					a = &c
				}
				return a
			})
			b.ResetTimer()
			for i := range b.N {
				p.SetMode([]*rules.Mode{other, m}[i%2])
			}
		})
	}
}
