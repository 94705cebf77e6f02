package matcher

import (
	"sync"
	"time"
)

// abandoned are a runner's own matches whose commit gave up (an error
// claiming, checking or deciding: commitBatch) and the matches its
// recoveries decided undone, by when. A commit that gave up runs no
// more, and left the match undecided (a decision that landed though its
// answer was lost stands, and the recovery follows it); the claims it
// made, and any it sent that land later, are the match's, so a recovery
// that meets one decides the match undone at once rather than wait
// staleClaim for the record to age (recoverer.decide), and whoever meets
// a late one gives it back. Another owner of the shard, before or
// after this runner, may commit the same id: the decision arbitrates.
//
// A match undone has spent its id for good: the same tickets formed
// again are named anew (runner.matchID), not committed only to find the
// decision undone. The runner's goroutine forms matches (formed); the
// commits and recoveries, on goroutines of their own, add to it.
type abandoned struct {
	mu      sync.Mutex
	matches map[string]abandonedMatch
}

type abandonedMatch struct {
	at     time.Time
	undone bool // decided undone by a recovery; else only given up
}

// maxAbandoned bounds the matches remembered: past it, those older than
// staleClaim (the record's age covers them) are forgotten, and if none
// is, a new one is not remembered (it waits out staleClaim, as before).
const maxAbandoned = 10000

func newAbandoned() *abandoned { return &abandoned{matches: map[string]abandonedMatch{}} }

// put remembers matchID at now, given up, or undone.
func (a *abandoned) put(matchID string, now time.Time, undone bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.matches[matchID]; !ok && len(a.matches) >= maxAbandoned {
		for id, m := range a.matches {
			if now.Sub(m.at) >= staleClaim {
				delete(a.matches, id)
			}
		}
		if len(a.matches) >= maxAbandoned {
			return
		}
	}
	a.matches[matchID] = abandonedMatch{at: now, undone: undone || a.matches[matchID].undone}
}

// gaveUp reports whether matchID is remembered: its commit gave up, or
// a recovery undid it.
func (a *abandoned) gaveUp(matchID string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.matches[matchID]
	return ok
}

// formed forgets matchID, formed again by the runner (its new commit
// runs), and reports whether a recovery undid it: its id is spent.
func (a *abandoned) formed(matchID string) (undone bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m, ok := a.matches[matchID]
	delete(a.matches, matchID)
	return ok && m.undone
}
