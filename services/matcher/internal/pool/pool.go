// Package pool holds the tickets waiting in one shard for one game mode
// and forms matches from them. It is not safe for concurrent use: the
// shard's owner goroutine is its only user.
//
// Index: tickets sit in skill buckets (BucketWidth wide), each an intrusive
// list in arrival order, and in one arrival list over the whole pool. A
// ticket's skill window widens with its wait, so within a bucket the oldest
// tickets accept the widest range: scanning a bucket stops at the first
// ticket too young to fit. Finding a partner looks at a few buckets around
// the anchor's skill, never at the whole pool.
//
// Fit: two tickets fit when their skills differ by at most the wider of
// their two windows, so a long-waiting ticket widens its own chances
// without forcing a new ticket far out of its range for long. In modes of
// more than two players every ticket must fit the anchor, the ticket the
// match is built around; the spread of a match is thus at most twice the
// widest window. A match never holds one player twice.
package pool

import (
	"cmp"
	"slices"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/modes"
)

// BucketWidth is the skill range of one index bucket.
const BucketWidth = 25

const buckets = events.MaxSkill/BucketWidth + 1

// Entry is one waiting ticket. The pool owns its links.
type Entry struct {
	TicketID string
	Players  []string
	Skill    int
	// Created is when the ticket was made (Unix nanoseconds).
	Created int64
	// Ack is the reply subject that acks the ticket's message: the pool
	// keeps it instead of the message, which is much larger.
	Ack string
	// Seq is the stream sequence of the ticket's message: a redelivery
	// has the same, a second message for the same ticket id another.
	Seq uint64
	// Visitor marks a ticket whose home is another region's shard.
	Visitor bool
	// Latencies are the regions the ticket may also play in, by latency.
	Latencies []RegionLatency

	bucket       int32
	bprev, bnext *Entry // skill bucket, oldest first
	aprev, anext *Entry // arrival order
}

// RegionLatency is one other region a ticket reported, and whether the
// ticket was offered to that region's pool yet.
type RegionLatency struct {
	Region  string
	MS      int
	Offered bool
}

// Waited is how long the ticket has waited at now.
func (e *Entry) Waited(now time.Time) time.Duration { return time.Duration(now.UnixNano() - e.Created) }

type list struct{ head, tail *Entry }

// Pool is the waiting tickets of one shard and mode.
type Pool struct {
	mode     modes.Mode
	buckets  [buckets]list
	arrival  list
	byTicket map[string]*Entry
}

// New returns an empty pool for mode.
func New(mode modes.Mode) *Pool {
	return &Pool{mode: mode, byTicket: map[string]*Entry{}}
}

// Mode is the pool's mode.
func (p *Pool) Mode() modes.Mode { return p.mode }

// Len is the number of waiting tickets.
func (p *Pool) Len() int { return len(p.byTicket) }

// Get returns a waiting ticket.
func (p *Pool) Get(ticketID string) (*Entry, bool) {
	e, ok := p.byTicket[ticketID]
	return e, ok
}

func bucketOf(skill int) int32 {
	return int32(min(max(skill, 0), events.MaxSkill) / BucketWidth)
}

// Add puts e in the pool. The caller has checked that the ticket is not
// waiting already and that its party fits a team. A player may be on two
// waiting tickets (see sharesPlayer).
func (p *Pool) Add(e *Entry) {
	e.bucket = bucketOf(e.Skill)
	b := &p.buckets[e.bucket]
	e.bprev, e.bnext = b.tail, nil
	if b.tail != nil {
		b.tail.bnext = e
	} else {
		b.head = e
	}
	b.tail = e
	e.aprev, e.anext = p.arrival.tail, nil
	if p.arrival.tail != nil {
		p.arrival.tail.anext = e
	} else {
		p.arrival.head = e
	}
	p.arrival.tail = e
	p.byTicket[e.TicketID] = e
}

// Remove takes a ticket out of the pool.
func (p *Pool) Remove(ticketID string) (*Entry, bool) {
	e, ok := p.byTicket[ticketID]
	if !ok {
		return nil, false
	}
	p.unlink(e)
	return e, true
}

func (p *Pool) unlink(e *Entry) {
	b := &p.buckets[e.bucket]
	if e.bprev != nil {
		e.bprev.bnext = e.bnext
	} else {
		b.head = e.bnext
	}
	if e.bnext != nil {
		e.bnext.bprev = e.bprev
	} else {
		b.tail = e.bprev
	}
	if e.aprev != nil {
		e.aprev.anext = e.anext
	} else {
		p.arrival.head = e.anext
	}
	if e.anext != nil {
		e.anext.aprev = e.aprev
	} else {
		p.arrival.tail = e.aprev
	}
	e.bprev, e.bnext, e.aprev, e.anext = nil, nil, nil, nil
	delete(p.byTicket, e.TicketID)
}

// Window is a ticket's skill window at now.
func (p *Pool) Window(e *Entry, now time.Time) int { return p.mode.Skill.At(e.Waited(now)) }

// MatchAround tries to build a match around anchor at now, from the
// tickets closest in skill that fit it. On success the tickets are removed
// and returned by team; otherwise nothing changes.
func (p *Pool) MatchAround(anchor *Entry, now time.Time) [][]*Entry {
	m := p.mode
	need := m.Teams * m.TeamSize
	aw := p.Window(anchor, now)
	// The widest any window can be bounds the search.
	reach := max(aw, m.Skill.Max)
	chosen := []*Entry{anchor}
	players := len(anchor.Players)
	room := make([]int, m.Teams)
	for i := range room {
		room[i] = m.TeamSize
	}
	room[0] -= len(anchor.Players)
	ab := int(anchor.bucket)
	for d := 0; d*BucketWidth <= reach+BucketWidth; d++ {
		for _, side := range [2]int{-1, 1} {
			if d == 0 && side == 1 {
				continue
			}
			bi := ab + side*d
			if bi < 0 || bi >= buckets {
				continue
			}
			// The closest skill this bucket can hold, from the anchor.
			minDiff := max(0, (d-1)*BucketWidth)
			for e := p.buckets[bi].head; e != nil; e = e.bnext {
				if e == anchor {
					continue
				}
				ew := p.Window(e, now)
				if max(aw, ew) < minDiff {
					break // younger tickets here have narrower windows
				}
				if abs(e.Skill-anchor.Skill) > max(aw, ew) {
					continue
				}
				t := teamWithRoom(room, len(e.Players))
				if t < 0 || sharesPlayer(chosen, e) {
					continue
				}
				room[t] -= len(e.Players)
				chosen = append(chosen, e)
				players += len(e.Players)
				if players == need {
					teams := p.assign(chosen)
					for _, c := range chosen {
						p.unlink(c)
					}
					return teams
				}
			}
		}
	}
	return nil
}

// sharesPlayer reports whether e has a player of a chosen ticket. A player
// has one live ticket (the players bucket), but a pool may still hold two
// tickets of one player for a moment: a visitor copy of the player's
// ticket from another region beside the newer ticket that supersedes it,
// until the notice that drops it arrives. A match never takes both.
func sharesPlayer(chosen []*Entry, e *Entry) bool {
	for _, c := range chosen {
		for _, p := range c.Players {
			if slices.Contains(e.Players, p) {
				return true
			}
		}
	}
	return false
}

// teamWithRoom is the team with the most room that fits n players, or -1.
func teamWithRoom(room []int, n int) int {
	best := -1
	for i, r := range room {
		if r >= n && (best < 0 || r > room[best]) {
			best = i
		}
	}
	return best
}

// assign splits the chosen tickets into balanced teams: parties largest
// first, each to the team with the most room and, among those, the lowest
// skill so far. The chosen set is known to fit (MatchAround checked it);
// if the balancing order cannot pack it, teams are filled first-fit.
func (p *Pool) assign(chosen []*Entry) [][]*Entry {
	m := p.mode
	order := slices.Clone(chosen)
	slices.SortStableFunc(order, func(a, b *Entry) int {
		if c := cmp.Compare(len(b.Players), len(a.Players)); c != 0 {
			return c
		}
		return cmp.Compare(b.Skill, a.Skill)
	})
	teams := make([][]*Entry, m.Teams)
	room := make([]int, m.Teams)
	sum := make([]int, m.Teams)
	for i := range room {
		room[i] = m.TeamSize
	}
	for _, e := range order {
		best := -1
		for i := range teams {
			if room[i] < len(e.Players) {
				continue
			}
			if best < 0 || room[i] > room[best] || room[i] == room[best] && sum[i] < sum[best] {
				best = i
			}
		}
		if best < 0 {
			return p.firstFit(chosen)
		}
		teams[best] = append(teams[best], e)
		room[best] -= len(e.Players)
		sum[best] += e.Skill * len(e.Players)
	}
	return teams
}

func (p *Pool) firstFit(chosen []*Entry) [][]*Entry {
	m := p.mode
	teams := make([][]*Entry, m.Teams)
	room := make([]int, m.Teams)
	for i := range room {
		room[i] = m.TeamSize
	}
	for _, e := range chosen {
		t := teamWithRoom(room, len(e.Players))
		teams[t] = append(teams[t], e)
		room[t] -= len(e.Players)
	}
	return teams
}

// Oldest returns up to n waiting tickets, oldest arrivals first. Matching
// some of them may remove others: check Contains before using one.
func (p *Pool) Oldest(n int) []*Entry {
	out := make([]*Entry, 0, min(n, len(p.byTicket)))
	for e := p.arrival.head; e != nil && len(out) < n; e = e.anext {
		out = append(out, e)
	}
	return out
}

// Contains reports whether e is still waiting in the pool.
func (p *Pool) Contains(e *Entry) bool { return p.byTicket[e.TicketID] == e }

// Expired removes every ticket that waited maxWait or more at now, oldest
// arrivals first, and calls f for each. Arrival order is creation order
// but for redelivered tickets, so a ticket behind a younger one may expire
// up to one sweep late.
func (p *Pool) Expired(now time.Time, f func(*Entry)) {
	limit := now.UnixNano() - int64(time.Duration(p.mode.MaxWait))
	for e := p.arrival.head; e != nil && e.Created <= limit; e = p.arrival.head {
		p.unlink(e)
		f(e)
	}
}

// Each calls f for every waiting ticket.
func (p *Pool) Each(f func(*Entry)) {
	for e := p.arrival.head; e != nil; e = e.anext {
		f(e)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
