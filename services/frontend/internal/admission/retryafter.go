package admission

import (
	"math"
	"time"
)

// count closes the rate window once it is rateWindow old: the next
// refusals are told to wait a second for every refusal per admission in
// it (at least 1, at most MaxRetryAfter), but at most twice what the
// last window told. Refusals are counted before the token is verified,
// so anyone can add to them: the doubling makes a flood that would push
// every refused player's wait to the cap keep at it for three windows,
// not one. A window that closes late (a quiet spell since: nothing came
// to close it) says nothing of now, and sets it back to 1. It returns
// the move it made, if any, for its caller to log once it has let go of
// the lock (logMove).
func (l *Limiter) count(now time.Time) (m move) {
	age := now.Sub(l.rateStart)
	if age < rateWindow {
		return m
	}
	was := l.retryAfter
	if age >= 2*rateWindow {
		l.retryAfter = 1
	} else {
		ratio := float64(l.refused) / float64(max(l.admitted, 1))
		l.retryAfter = int(min(max(math.Ceil(ratio), 1), float64(2*l.retryAfter), MaxRetryAfter))
	}
	if l.retryAfter != was {
		m = move{to: l.retryAfter, was: was, refused: l.refused, admitted: l.admitted, quiet: age >= 2*rateWindow}
	}
	l.rateStart, l.refused, l.admitted = now, 0, 0
	return m
}

// move is a move of the Retry-After (count): to and was in seconds, with
// the closing window's refusals and admissions (a quiet one's are of a
// window long past: they did not set it).
type move struct {
	to, was           int
	refused, admitted int
	quiet             bool
}

// logMove logs m, if it is a move (Config.Log).
func (l *Limiter) logMove(m move) {
	if m.to == 0 || l.cfg.Log == nil {
		return
	}
	l.cfg.Log.Info("overload Retry-After moved", "retry_after_seconds", m.to, "was_seconds", m.was,
		"refused", m.refused, "admitted", m.admitted, "quiet", m.quiet)
}

// RetryAfter is the Retry-After, in whole seconds, an overload refusal
// is given now: 1 until refusals outnumber admissions, then a second for
// each refusal per admission of the last rateWindow (count says how it
// moves), up to MaxRetryAfter.
func (l *Limiter) RetryAfter() int {
	now := l.cfg.Now()
	l.mu.Lock()
	m := l.count(now)
	ra := l.retryAfter
	l.mu.Unlock()
	l.logMove(m)
	return ra
}
