package pool

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// entry builds a ticket as the matcher holds it: ids and the ack subject
// are real-sized strings (a JetStream ack subject is about 80 bytes).
func entry(i int, skill int, created time.Time) *Entry {
	id := fmt.Sprintf("r%024x", i)
	return &Entry{
		TicketID: id,
		Players:  []string{fmt.Sprintf("player-%d", i)},
		Skill:    skill,
		Created:  created.UnixNano(),
		Ack:      fmt.Sprintf("$JS.ACK.TICKETS.tickets-eu-gold.1.%d.%d.%d.0", i+1, i+1, created.UnixNano()),
		Seq:      uint64(i + 1),
	}
}

// fill puts n tickets spread over [1600, 2000) in a 1v1 pool, without
// matching them: the state of a shard with n waiting tickets.
func fill(p *Pool, n int, rng *rand.Rand) {
	for i := range n {
		p.Add(entry(i, 1600+rng.IntN(400), t0))
	}
}

// BenchmarkMatch1M: one worker's pool of 1,000,000 waiting tickets in one
// shard (1v1, gold tier). Each iteration adds a ticket to keep the pool at
// 1M, then a new ticket that is matched at once with the closest waiting
// one: tickets/s counts both tickets of each match.
func BenchmarkMatch1M(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	p := New(defaultMode(b))
	fill(p, 1_000_000, rng)
	news := make([]*Entry, b.N)
	fills := make([]*Entry, b.N)
	for i := range b.N {
		news[i] = entry(2_000_000+i, 1600+rng.IntN(400), t0)
		fills[i] = entry(4_000_000+i, 1600+rng.IntN(400), t0)
	}
	now := t0.Add(time.Second)
	b.ResetTimer()
	matched := 0
	for i := range b.N {
		p.Add(fills[i])
		p.Add(news[i])
		if p.MatchAround(news[i], now) != nil {
			matched += 2
		}
	}
	b.StopTimer()
	if matched != 2*b.N {
		b.Fatalf("matched %d of %d tickets", matched, 2*b.N)
	}
	b.ReportMetric(float64(matched)/b.Elapsed().Seconds(), "tickets/s")
}

// BenchmarkPoolMemory reports the heap held per waiting ticket with
// 1,000,000 tickets in one pool: the entry, its strings and the indexes.
func BenchmarkPoolMemory(b *testing.B) {
	for range b.N {
		rng := rand.New(rand.NewPCG(1, 2))
		before := heapInUse()
		p := New(defaultMode(b))
		fill(p, 1_000_000, rng)
		after := heapInUse()
		b.ReportMetric(float64(after-before)/float64(p.Len()), "bytes/ticket")
		runtime.KeepAlive(p)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func defaultMode(b *testing.B) *rules.Mode {
	m, ok := rules.Default().Mode("1v1")
	if !ok {
		b.Fatal("no default 1v1")
	}
	return m
}

// BenchmarkComeBackLate1M: a pool of 1,000,000 tickets created over the
// last minute takes tickets back that were created earlier in that minute
// (requeued, redelivered, visitors) and gives them up again: what such a
// ticket costs to file for its expiry and to take out.
func BenchmarkComeBackLate1M(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	p := New(defaultMode(b))
	for i := range 1_000_000 {
		p.Add(entry(i, 1600+rng.IntN(400), t0.Add(time.Duration(i)*60*time.Microsecond)))
	}
	late := make([]*Entry, b.N)
	for i := range b.N {
		late[i] = entry(2_000_000+i, 1600+rng.IntN(400), t0.Add(time.Duration(rng.IntN(60_000))*time.Millisecond))
	}
	b.ResetTimer()
	for i := range b.N {
		p.Add(late[i])
		p.Remove(late[i].TicketID)
	}
}

// BenchmarkMatch5v5 is BenchmarkMatch1M's work in a 5v5 mode, solo
// players and parties of 2 in a pool of 100,000: each iteration adds ten
// tickets and matches around the last (the scan, and with teams of two or
// more the candidates kept for an exact packing).
func BenchmarkMatch5v5(b *testing.B) {
	m, ok := rules.Default().Mode("5v5")
	if !ok {
		b.Fatal("no default 5v5")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	p := New(m)
	id := 0
	add := func() *Entry {
		id++
		players := []string{fmt.Sprintf("p%d", id)}
		if id%4 == 0 {
			players = append(players, fmt.Sprintf("q%d", id))
		}
		e := &Entry{TicketID: fmt.Sprintf("t%d", id), Players: players, Skill: 1600 + rng.IntN(400), Created: t0.UnixNano()}
		p.Add(e)
		return e
	}
	for range 100_000 {
		add()
	}
	now := t0.Add(time.Second)
	b.ResetTimer()
	matched := 0
	for range b.N {
		var last *Entry
		for range 10 {
			last = add()
		}
		if p.MatchAround(last, now) != nil {
			matched++
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(matched)/float64(b.N), "matched/op")
}

// BenchmarkUnpackable: a 5v5 whose pool holds 10,000 parties of 4 and one
// player alone, every one in reach: a try around one of them forms nothing
// (the one player could fill either team, not both).
func BenchmarkUnpackable(b *testing.B) {
	m, ok := rules.Default().Mode("5v5")
	if !ok {
		b.Fatal("no default 5v5")
	}
	p := New(m)
	for i := range 10_000 {
		id := fmt.Sprintf("t%d", i)
		p.Add(&Entry{TicketID: id, Players: []string{id + "a", id + "b", id + "c", id + "d"}, Skill: 1600 + i%400, Created: t0.UnixNano()})
	}
	p.Add(&Entry{TicketID: "solo", Players: []string{"solo"}, Skill: 1800, Created: t0.UnixNano()})
	anchor, _ := p.Get("t0")
	now := t0.Add(40 * time.Second) // windows at their widest
	b.ResetTimer()
	for range b.N {
		if p.MatchAround(anchor, now) != nil {
			b.Fatal("matched")
		}
	}
}
