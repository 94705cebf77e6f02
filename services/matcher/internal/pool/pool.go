// Package pool holds the tickets waiting to be matched, per shard and mode,
// in arrival order. It is not safe for concurrent use: the matcher's one
// owner goroutine is its only user.
package pool

import (
	"slices"
	"time"
)

// Key names one pool: tickets only meet tickets of the same key.
type Key struct {
	Region, Tier, Mode string
}

// Entry is one waiting ticket.
type Entry struct {
	TicketID  string
	Players   []string
	Skill     int
	CreatedAt time.Time
	// Handle is whatever the caller needs to ack the ticket later.
	Handle any
}

// Pool is every waiting ticket.
type Pool struct {
	queues   map[Key][]*Entry
	byTicket map[string]Key
	byPlayer map[string]string // player id -> ticket id
}

// New returns an empty pool.
func New() *Pool {
	return &Pool{queues: map[Key][]*Entry{}, byTicket: map[string]Key{}, byPlayer: map[string]string{}}
}

// Len is the number of waiting tickets.
func (p *Pool) Len() int { return len(p.byTicket) }

// Get returns the waiting entry of a ticket.
func (p *Pool) Get(ticketID string) (*Entry, bool) {
	k, ok := p.byTicket[ticketID]
	if !ok {
		return nil, false
	}
	for _, e := range p.queues[k] {
		if e.TicketID == ticketID {
			return e, true
		}
	}
	return nil, false
}

// WaitingTicketOf returns the ticket a player waits with, if any.
func (p *Pool) WaitingTicketOf(playerID string) (string, bool) {
	id, ok := p.byPlayer[playerID]
	return id, ok
}

// Add appends e to the pool of k. The caller has checked that neither the
// ticket nor any of its players is waiting already.
func (p *Pool) Add(k Key, e *Entry) {
	p.queues[k] = append(p.queues[k], e)
	p.byTicket[e.TicketID] = k
	for _, pl := range e.Players {
		p.byPlayer[pl] = e.TicketID
	}
}

// Remove takes a ticket out of the pool and returns it.
func (p *Pool) Remove(ticketID string) (*Entry, bool) {
	k, ok := p.byTicket[ticketID]
	if !ok {
		return nil, false
	}
	q := p.queues[k]
	i := slices.IndexFunc(q, func(e *Entry) bool { return e.TicketID == ticketID })
	e := q[i]
	p.forget(k, slices.Delete(q, i, i+1), e)
	return e, true
}

func (p *Pool) forget(k Key, q []*Entry, e *Entry) {
	if len(q) == 0 {
		delete(p.queues, k)
	} else {
		p.queues[k] = q
	}
	delete(p.byTicket, e.TicketID)
	for _, pl := range e.Players {
		if p.byPlayer[pl] == e.TicketID {
			delete(p.byPlayer, pl)
		}
	}
}

// TakeMatch fills teams tickets of teamSize players each from the pool of
// k, in arrival order, keeping each ticket's players on one team. If the
// teams can be filled, the tickets are removed and returned by team;
// otherwise nothing changes.
func (p *Pool) TakeMatch(k Key, teams, teamSize int) [][]*Entry {
	q := p.queues[k]
	room := make([]int, teams)
	for i := range room {
		room[i] = teamSize
	}
	out := make([][]*Entry, teams)
	free := teams * teamSize
	var picked []int
	for i, e := range q {
		n := len(e.Players)
		t := slices.IndexFunc(room, func(r int) bool { return r >= n })
		if t < 0 {
			continue
		}
		room[t] -= n
		free -= n
		out[t] = append(out[t], e)
		picked = append(picked, i)
		if free == 0 {
			break
		}
	}
	if free != 0 {
		return nil
	}
	rest := make([]*Entry, 0, len(q)-len(picked))
	for i, e := range q {
		if !slices.Contains(picked, i) {
			rest = append(rest, e)
		}
	}
	for _, team := range out {
		for _, e := range team {
			p.forget(k, rest, e)
		}
	}
	if len(rest) == 0 {
		delete(p.queues, k)
	}
	return out
}

// Put returns tickets taken by TakeMatch to the front of their pool, in
// their old order, when the match could not be published.
func (p *Pool) Put(k Key, entries []*Entry) {
	p.queues[k] = append(slices.Clone(entries), p.queues[k]...)
	for _, e := range entries {
		p.byTicket[e.TicketID] = k
		for _, pl := range e.Players {
			p.byPlayer[pl] = e.TicketID
		}
	}
}

// Expired removes every ticket whose wait, by maxWait for its key, is over
// at now, and calls f for each.
func (p *Pool) Expired(now time.Time, maxWait func(Key) time.Duration, f func(Key, *Entry)) {
	for k, q := range p.queues {
		limit := maxWait(k)
		keep := q[:0]
		var gone []*Entry
		for _, e := range q {
			if now.Sub(e.CreatedAt) >= limit {
				gone = append(gone, e)
			} else {
				keep = append(keep, e)
			}
		}
		for _, e := range gone {
			p.forget(k, keep, e)
			f(k, e)
		}
	}
}

// Each calls f for every waiting entry.
func (p *Pool) Each(f func(*Entry)) {
	for _, q := range p.queues {
		for _, e := range q {
			f(e)
		}
	}
}
