package pool

// Parties. A team is filled by whole parties only, so a match around an
// anchor needs parties waiting whose sizes sum to the rest of its team
// exactly, and others that sum to a whole team (every mode has two teams
// or more, and a match that starts early at least two). The pool counts
// its tickets by party size, and MatchAround asks packable before it
// scans: a pool that cannot make those sums (a 5v5 of parties of 4 and
// nobody alone, where every anchor's team lacks its one) is not scanned,
// which read every ticket in reach for nothing (3 s a sweep with 40,000
// such parties, review of 2026-12-05).

// count adds d to the count of the tickets of e's party size.
func (p *Pool) count(e *Entry, d int) {
	n := len(e.Players)
	for len(p.parties) <= n {
		p.parties = append(p.parties, 0)
	}
	p.parties[n] += d
}

// packable reports whether the parties waiting besides anchor could fill
// the rest of its team, a whole team, and both at once (the two are
// different parties: a sum of their sizes). False means no match can
// form around anchor now; true says nothing more (it weighs party sizes
// alone, not skills, rules or how the sums split).
func (p *Pool) packable(anchor *Entry) bool {
	size := p.mode.TeamSize
	if size == 1 || size > 31 {
		return true // any one player fills a seat; or more sums than a word
	}
	rest := size - len(anchor.Players)
	sums := uint64(1) // bit x: some parties waiting have x players in all
	for n := 1; n <= size && n < len(p.parties); n++ {
		k := p.parties[n]
		if n == len(anchor.Players) && p.Contains(anchor) {
			k--
		}
		for range min(k, (rest+size)/n) {
			sums |= sums << n
		}
	}
	return sums&(1<<rest) != 0 && sums&(1<<size) != 0 && sums&(1<<(rest+size)) != 0
}
