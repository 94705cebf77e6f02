// Package pool holds the tickets waiting in one shard for one game mode
// and forms matches from them. It is not safe for concurrent use: the
// shard's owner goroutine is its only user.
//
// Fit: two tickets fit when their skills differ by at most the wider of
// their two windows, so a long-waiting ticket widens its own chances
// without forcing a new ticket far out of its range for long, and when
// every attribute rule of the mode holds between them at the longer of
// their two waits (rules.Mode.Fits: a distance widens, a rule drops after
// its drop_after). fits is the one judge: matching, backfill (Fill) and a
// match function's proposals (Take) all ask it. In modes of more than two
// players every ticket must fit the anchor, the ticket the match is built
// around; the spread of a match is thus at most twice the widest window.
// A match never holds one player twice.
//
// Attributes: an entry keeps its ticket's attributes twice, compactly:
// Attrs, their JSON (given back to offers, requeues and match functions,
// and read again when a rule set reload changes the mode's rules), and
// Values, compiled for the mode's rules, which fits compares without a
// map or a string hash.
//
// Index: tickets sit in skill buckets (BucketWidth wide), each split by
// class (the values of the mode's equal rules: platform, a tag; and the
// band of its first distance rule's value, in steps of the rule's widest
// limit) into intrusive lists in arrival order, and in one arrival list
// over the whole pool. A ticket's skill window and distance limits widen
// with its wait, and a rule drops only after a wait, so within a list the
// oldest tickets accept the most: scanning a list stops at the first
// ticket too young for the window to reach the bucket, or for the rules
// that keep its class from the anchor's to have relaxed. Finding a partner
// thus reads a few lists around the anchor's skill, never the whole pool,
// and passes a class kept apart at the cost of one look. What is left: a
// ticket whose neighbouring band is full of its class, none within its
// limit, reads them (BENCHMARKS.md measures it).
//
// Exact packing and starting early (early.go): with teams of two or
// more, a full match the scan misses is packed exactly from the
// candidates it met; a mode with start_early forms, once a match's anchor
// has waited long enough and no full match can form, the largest match of
// whole teams it can. A mode of teams of one pays one comparison for it.
package pool

import (
	"slices"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// Pool is the waiting tickets of one shard and mode.
type Pool struct {
	mode     *rules.Mode
	idx      index
	arrival  list
	byTicket map[string]*Entry
	// due files every ticket by the second it was created, from dueFrom
	// on, for Due and Expired: arrival order is creation order but for tickets
	// that come back later than younger ones (redelivered after a
	// takeover, nakked during a commit, queued again, visitors), and an
	// expiry that read the arrival list would leave those behind the
	// younger ones until they expired too (a max wait late, in the chaos
	// runs). Keeping the lists themselves in creation order instead costs
	// a walk over every younger ticket per such ticket. A ticket that
	// leaves the pool leaves its second's file (Entry.dueAt): no garbage
	// is kept for a max wait.
	due     map[int64][]*Entry
	dueFrom int64
	// turn is where Sweep's turn round the pool goes on: the next ticket
	// it retries past the oldest (nil: the first one past them).
	turn *Entry
	// parties[n] counts the tickets of parties of n (parties.go).
	parties []int
}

// New returns an empty pool for mode, which it shares and never changes.
func New(mode *rules.Mode) *Pool {
	return &Pool{mode: mode, idx: newIndex(mode), byTicket: map[string]*Entry{}, due: map[int64][]*Entry{}}
}

// Mode is the pool's mode.
func (p *Pool) Mode() *rules.Mode { return p.mode }

// Len is the number of waiting tickets.
func (p *Pool) Len() int { return len(p.byTicket) }

// Get returns a waiting ticket.
func (p *Pool) Get(ticketID string) (*Entry, bool) {
	e, ok := p.byTicket[ticketID]
	return e, ok
}

// Add puts e in the pool. The caller has checked that the ticket is not
// waiting already and that its party fits a team. A player may be on two
// waiting tickets (see sharesPlayer). e.Values are compiled again from
// e.Attrs unless SetAttributes compiled them for the pool's mode.
func (p *Pool) Add(e *Entry) {
	p.compile(e)
	p.idx.link(e)
	e.aprev, e.anext = p.arrival.tail, nil
	if p.arrival.tail != nil {
		p.arrival.tail.anext = e
	} else {
		p.arrival.head = e
	}
	p.arrival.tail = e
	p.byTicket[e.TicketID] = e
	p.file(e)
	p.count(e, 1)
}

// file puts e in the file of the second it was created.
func (p *Pool) file(e *Entry) {
	sec := e.Created / int64(time.Second)
	e.dueAt = int32(len(p.due[sec]))
	p.due[sec] = append(p.due[sec], e)
	if len(p.due) == 1 || sec < p.dueFrom {
		p.dueFrom = sec
	}
}

// unfile takes e out of its second's file, if it is there (Expired takes
// a whole second's out before it goes through it).
func (p *Pool) unfile(e *Entry) {
	sec := e.Created / int64(time.Second)
	filed := p.due[sec]
	last := len(filed) - 1
	if int(e.dueAt) > last || filed[e.dueAt] != e {
		return
	}
	filed[e.dueAt] = filed[last]
	filed[e.dueAt].dueAt = e.dueAt
	filed[last] = nil
	if last == 0 {
		delete(p.due, sec)
		return
	}
	p.due[sec] = filed[:last]
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
	if p.turn == e {
		p.turn = e.anext
	}
	p.idx.unlink(e)
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
	e.aprev, e.anext = nil, nil
	delete(p.byTicket, e.TicketID)
	p.unfile(e)
	p.count(e, -1)
}

// Window is a ticket's skill window at now.
func (p *Pool) Window(e *Entry, now time.Time) int { return p.mode.Skill.At(e.Waited(now)) }

// MatchAround tries to build a match around anchor at now, from the
// tickets closest in skill that fit it (candidates). On success the
// tickets are removed and returned by team; otherwise nothing changes. A
// full match has the mode's Teams; when the mode starts early (early.go)
// and the anchor has waited its After, a match that forms when a full
// one cannot has fewer: the teams returned are those that play, each of
// TeamSize players.
func (p *Pool) MatchAround(anchor *Entry, now time.Time) [][]*Entry {
	m := p.mode
	if len(anchor.Players) > m.TeamSize {
		// A party taken in under a reloaded mode's larger teams: it fits
		// no team now, so it waits (and expires) rather than being packed.
		return nil
	}
	if !p.packable(anchor) {
		return nil
	}
	need := m.Players()
	chosen := []*Entry{anchor}
	players := len(anchor.Players)
	room := make([]int, m.Teams)
	for i := range room {
		room[i] = m.TeamSize
	}
	room[0] -= len(anchor.Players)
	pick, minTeams := p.packing(anchor, now)
	for e := range p.candidates(anchor, now) {
		if pick != nil {
			pick.offer(e)
		}
		t := teamWithRoom(room, len(e.Players))
		if t < 0 || sharesPlayer(chosen, e) {
			continue
		}
		room[t] -= len(e.Players)
		chosen = append(chosen, e)
		players += len(e.Players)
		if players == need {
			teams := p.assign(chosen, m.Teams, nil)
			for _, c := range chosen {
				p.unlink(c)
			}
			return teams
		}
	}
	if pick != nil {
		return p.openPacked(pick, minTeams)
	}
	return nil
}

// fits reports whether e may play in a match built around anchor at now:
// their skills differ by at most the wider of their windows, and every
// attribute rule of the mode holds between them at the longer of their
// waits (rules.Mode.Fits; Values of another mode never fit). Every rule of
// the mode is judged here and only here, so matching, backfill and a match
// function's proposals are judged alike.
func (p *Pool) fits(anchor, e *Entry, now time.Time) bool {
	wa, we := anchor.Waited(now), e.Waited(now)
	return abs(e.Skill-anchor.Skill) <= max(p.mode.Skill.At(wa), p.mode.Skill.At(we)) &&
		p.mode.Fits(anchor.Values, e.Values, wa, we)
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

// Oldest returns up to n waiting tickets, oldest arrivals first. Matching
// some of them may remove others: check Contains before using one.
func (p *Pool) Oldest(n int) []*Entry {
	out := make([]*Entry, 0, min(n, len(p.byTicket)))
	for e := p.arrival.head; e != nil && len(out) < n; e = e.anext {
		out = append(out, e)
	}
	return out
}

// Sweep returns up to n waiting tickets for a sweep to retry: the n/2
// oldest arrivals, nearest their max wait, then as many more in turn
// round the rest of the pool, from where the last sweep's turn stopped.
// The oldest alone kept every ticket behind them from any retry while
// those waited on unmatched (tickets of a build no one else plays): two
// tickets behind them that fit only each other met only on arrival, at
// their narrowest windows, and expired. Each ticket past the oldest is
// now retried once every (Len - n/2) / (n - n/2) sweeps. Matching some
// may remove others: check Contains before using one.
func (p *Pool) Sweep(n int) []*Entry {
	if n >= len(p.byTicket) {
		return p.Oldest(n)
	}
	out := p.Oldest(n / 2)
	past := p.arrival.head // the first ticket past the oldest
	if len(out) > 0 {
		past = out[len(out)-1].anext
	}
	e := p.turn
	if e == nil || slices.Contains(out, e) {
		e = past
	}
	// Fewer are wanted than wait past the oldest (n < Len), so the turn
	// takes none twice, and wrapping past the tail finds one.
	for range n - len(out) {
		if e == nil {
			e = past
		}
		out = append(out, e)
		e = e.anext
	}
	p.turn = e
	return out
}

// Contains reports whether e is still waiting in the pool.
func (p *Pool) Contains(e *Entry) bool { return p.byTicket[e.TicketID] == e }

// Due returns the tickets that waited maxWait or more at now, the oldest
// second first, and leaves them in the pool (Expired takes them out).
func (p *Pool) Due(now time.Time) []*Entry {
	limit, last := p.dueBy(now)
	var out []*Entry
	for sec := p.dueFrom; len(p.due) > 0 && sec <= last; sec++ {
		for _, e := range p.due[sec] {
			if e.Created <= limit && p.Contains(e) {
				out = append(out, e)
			}
		}
	}
	return out
}

// dueBy is what a ticket due at now was created by: limit in Unix
// nanoseconds, last its second.
func (p *Pool) dueBy(now time.Time) (limit, last int64) {
	limit = now.UnixNano() - int64(time.Duration(p.mode.MaxWait))
	return limit, limit / int64(time.Second)
}

// Expired removes every ticket that waited maxWait or more at now, the
// oldest second first, and calls f for each, however late it came.
func (p *Pool) Expired(now time.Time, f func(*Entry)) {
	limit, last := p.dueBy(now)
	for sec := p.dueFrom; len(p.due) > 0 && sec <= last; sec++ {
		// Out of the file first: f may add to the pool meanwhile.
		filed := p.due[sec]
		delete(p.due, sec)
		for _, e := range filed {
			switch {
			case !p.Contains(e): // left the pool in an earlier f
			case e.Created <= limit:
				p.unlink(e)
				f(e)
			default: // in the last second, not yet due
				p.file(e)
			}
		}
		p.dueFrom = sec
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
