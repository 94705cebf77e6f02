package matcher

import (
	"sync"
	"time"
)

// abandoned are a runner's own matches whose commit gave up (an error
// claiming, checking or deciding: commitBatch), by when. A commit that
// gave up runs no more, and left the match undecided (a decision that
// landed though its answer was lost stands, and the recovery follows
// it); the claims it made, and any it sent that land later, are the
// match's, so a recovery that meets one decides the match undone at once
// rather than wait staleClaim for its claims to age (recoverer.decide),
// and whoever meets a late one gives it back. Another owner of the
// shard, before or after this runner, may commit the same id: the
// decision arbitrates. The runner's goroutine forms matches (formed);
// the commits, on goroutines of their own, add to it.
type abandoned struct {
	mu      sync.Mutex
	matches map[string]time.Time
}

// maxAbandoned bounds the matches remembered: past it, those older than
// staleClaim (their claims' age covers them) are forgotten, and if none
// is, a new one is not remembered (it waits out staleClaim, as before).
const maxAbandoned = 10000

func newAbandoned() *abandoned { return &abandoned{matches: map[string]time.Time{}} }

// put remembers that the commit of matchID gave up, at now.
func (a *abandoned) put(matchID string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.matches[matchID]; !ok && len(a.matches) >= maxAbandoned {
		for id, at := range a.matches {
			if now.Sub(at) >= staleClaim {
				delete(a.matches, id)
			}
		}
		if len(a.matches) >= maxAbandoned {
			return
		}
	}
	a.matches[matchID] = now
}

// gaveUp reports whether matchID's commit gave up.
func (a *abandoned) gaveUp(matchID string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.matches[matchID]
	return ok
}

// formed forgets matchID, formed again by the runner: its new commit runs.
func (a *abandoned) formed(matchID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.matches, matchID)
}

// spent are the ids of matches decided undone that the same tickets,
// formed again, must not take (runner.matchID): a commit that found its
// match undone by another worker with none of its tickets stale
// (settleCommit), or a recovery of the runner's that undid one
// (recoverMatch), which runs off the runner's goroutine. Each is kept
// recentFor.
type spent struct {
	mu  sync.Mutex
	ids *recent[struct{}]
}

func newSpent() *spent { return &spent{ids: newRecent[struct{}](0)} }

func (s *spent) put(matchID string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids.put(matchID, struct{}{}, now)
}

func (s *spent) has(matchID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids.has(matchID)
}

func (s *spent) prune(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids.prune(now)
}
