package tickets

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// withdrawnReason is what the players of a ticket withdrawn are told.
const withdrawnReason = "withdrawn: the frontend could not finish creating it"

// Later tries of a withdrawal that failed: the first after
// withdrawRetryFirst, each wait twice the last, up to withdrawRetryMax;
// at most maxWithdrawing tickets at once, each a timer.
const (
	withdrawRetryFirst = time.Second
	withdrawRetryMax   = 8 * time.Second
	maxWithdrawing     = 10000
)

// How a withdrawal ended: one NATS refused, once tried again in the
// background (the outcome label of
// quickmatch_frontend_refused_withdrawals_total), and, the first five
// words, one a creation made before it answered (of
// quickmatch_frontend_creation_withdrawals_total).
const (
	withdrawnOutcome  = "withdrawn"
	matchedFirst      = "matched"  // in a match before it went through: its player may never come
	decidedFirst      = "decided"  // cancelled, expired or superseded first: nothing left to do
	pastMaxWait       = "max_wait" // given up: its matcher expires it
	tooManyWithdrawn  = "too_many" // never tried again: maxWithdrawing were waiting
	stoppedWithdrawal = "stopped"  // left when the frontend stopped
	answeredUnknown   = "answered" // never tried again: its creation answered it, its fate unknown (fateUnknown)
	matchHeard        = "heard"    // no claim read; the result heard says it is in a match (heardInMatch)
	unknownFate       = "unknown"  // no claim read, nothing heard (fateUnknown)
)

// withdrawals are the withdrawals of failed creations: how those made
// before the answer ended (made), and those NATS refused, tried again in
// the background: which tickets wait for their next try (each its
// timer), and how the others ended. A frontend that stops drops its
// timers and says which tickets it leaves (Stop): each may be matched
// with nobody following it.
type withdrawals struct {
	mu      sync.Mutex
	waiting map[string]*time.Timer // by ticket id; a try under way keeps its ticket here
	stopped bool
	// stopping is closed by Stop: a creation still trying its writes
	// (finish) or its withdrawal (withdraw) again gives up at once
	// (pause).
	stopping chan struct{}
	ended    *prometheus.CounterVec
	gauge    prometheus.GaugeFunc
	// made counts the withdrawals creations made before they answered
	// (withdraw), by outcome.
	made *prometheus.CounterVec
	// elsewhere counts the replacements whose take failed that were
	// answered, found their player's live ticket (takenElsewhere).
	elsewhere prometheus.Counter
}

// madeOutcomes are the outcomes of a withdrawal a creation makes.
var madeOutcomes = []string{withdrawnOutcome, decidedFirst, matchedFirst, matchHeard, unknownFate}

func newWithdrawals() *withdrawals {
	w := &withdrawals{waiting: map[string]*time.Timer{}, stopping: make(chan struct{})}
	w.ended = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quickmatch_frontend_refused_withdrawals_total",
		Help: "Withdrawals of failed creations that NATS refused, by how they ended once tried again in the background (withdrawn; matched: its player may never come; decided; max_wait) or why they were not (too_many, stopped; answered: its ticket answered as queued, as a matcher may take it).",
	}, []string{"outcome"})
	w.gauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "quickmatch_frontend_refused_withdrawals_waiting",
		Help: "Tickets of failed creations whose withdrawal NATS refused, waiting to be tried again: each may be matched with nobody following it meanwhile.",
	}, func() float64 {
		w.mu.Lock()
		defer w.mu.Unlock()
		return float64(len(w.waiting))
	})
	w.made = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quickmatch_frontend_creation_withdrawals_total",
		Help: "Withdrawals failed creations made before they answered, by outcome: withdrawn; decided: in no match first (expired, superseded); matched: a matcher's claim came first, and the creation answered the match unless its record could be neither stored nor held; heard: no claim could be read, and the creation answered the match from the result this frontend heard; unknown: neither, the ticket answered as queued or left to withdraw in the background (quickmatch_frontend_refused_withdrawals_total).",
	}, []string{"outcome"})
	for _, o := range madeOutcomes {
		w.made.WithLabelValues(o) // each series from 0: increase() sees the first one
	}
	w.elsewhere = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "quickmatch_frontend_replacements_taken_elsewhere_total",
		Help: "Replacements of a player's waiting ticket whose own take failed, answered as queued because their player's entry named them (their shard's owner took them in): before, or instead of, a withdrawal.",
	})
	return w
}

// Metrics are the collectors of the withdrawals (those creations made,
// those NATS refused) and of the records held (unstored), for the
// frontend's registry.
func (s *Service) Metrics() []prometheus.Collector {
	held := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "quickmatch_frontend_unstored_records",
		Help: "Records of answered tickets this frontend holds in memory while their put is tried again (the tickets bucket refused or cut off): other frontends answer 404 for these tickets meanwhile, and a frontend that dies loses them.",
	}, func() float64 { return float64(s.unstored.count()) })
	return []prometheus.Collector{s.withdrawals.ended, s.withdrawals.gauge, s.withdrawals.made, s.withdrawals.elsewhere, held}
}

// schedule sets id's next try after d, unless the frontend stopped or
// maxWithdrawing others wait (first: id's first try). It returns ""
// when the try was set, else why not: stoppedWithdrawal or
// tooManyWithdrawn.
func (w *withdrawals) schedule(id string, d time.Duration, first bool, try func()) (why string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.stopped:
		return stoppedWithdrawal
	case first && len(w.waiting) >= maxWithdrawing:
		return tooManyWithdrawn
	}
	w.waiting[id] = time.AfterFunc(d, try)
	return ""
}

// pause waits d, and reports false instead if ctx ends or the frontend
// stops first (Stop): a creation trying its writes or its withdrawal
// again gives up then.
func (w *withdrawals) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-w.stopping:
		return false
	case <-t.C:
		return true
	}
}

// whileRefused calls try again while refused says its last call was
// refused for now (refusedNow: a bucket without a leader), after a
// backoff from withdrawBackoff up to withdrawBackoffMax, give or take a
// quarter, until ctx ends or the frontend stops (pause). A withdrawal's
// claim (withdraw) and a queued ticket's take (take) are tried so.
func (w *withdrawals) whileRefused(ctx context.Context, refused func() bool, try func()) {
	for wait := withdrawBackoff; refused(); wait = min(2*wait, withdrawBackoffMax) {
		if !w.pause(ctx, jittered(wait)) {
			return
		}
		try()
	}
}

// isStopping reports whether Stop was called.
func (w *withdrawals) isStopping() bool {
	select {
	case <-w.stopping:
		return true
	default:
		return false
	}
}

// count counts id's withdrawal as ended with outcome.
func (w *withdrawals) count(id, outcome string) {
	w.mu.Lock()
	delete(w.waiting, id)
	w.mu.Unlock()
	w.ended.WithLabelValues(outcome).Inc()
}

// withdrawLater tries again, in the background, to withdraw a ticket
// whose creation answered an error though its withdrawal's fate was
// unknown (fateUnknown): a replacement whose take failed (queueThenTake),
// or one whose record could be neither stored nor held (finishOrWithdraw),
// until it is withdrawn or decided otherwise, or its mode's max_wait
// passed (its matcher expires it then). Left queued, it was matched with
// nobody following it: its partners sent to a game it never joins (chaos
// S48 logged 77 such tickets in a 39 s claims outage). A client that asks
// again meanwhile supersedes it (its players' entry names it), and the
// next try finds it decided.
func (s *Service) withdrawLater(rec Record) {
	id := rec.Ticket.TicketID
	until := rec.Ticket.CreatedAt.Add(s.maxWait(rec.Ticket.Mode))
	delay := withdrawRetryFirst
	var try func()
	try = func() {
		ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
		defer cancel()
		v, _, err := s.end(ctx, rec, "", events.OwnerCancelled, withdrawnReason)
		next := min(2*delay, withdrawRetryMax)
		outcome := ""
		switch {
		case err == nil:
			s.log.Warn("ticket withdrawn on a later try: its creation had failed", "ticket_id", id)
			outcome = withdrawnOutcome
		case errors.Is(err, ErrAlreadyDecided) && v.Status.InMatch():
			s.log.Error("ticket put in a match before its withdrawal went through: its creation had failed, and its player may never come",
				"ticket_id", id, "status", v.Status)
			outcome = matchedFirst
		case errors.Is(err, ErrAlreadyDecided):
			s.log.Info("ticket decided before its withdrawal went through", "ticket_id", id, "err", err)
			outcome = decidedFirst
		case s.now().Add(next).After(until):
			s.log.Error("ticket not withdrawn within its max wait; it may be matched with nobody following it", "ticket_id", id, "err", err)
			outcome = pastMaxWait
		default:
			delay = next
			s.notTriedAgain(id, s.withdrawals.schedule(id, jittered(delay), false, try))
			return
		}
		s.withdrawals.count(id, outcome)
	}
	s.notTriedAgain(id, s.withdrawals.schedule(id, jittered(delay), true, try))
}

// notTriedAgain counts id's withdrawal that schedule did not set (why:
// its answer; "": it did).
func (s *Service) notTriedAgain(id, why string) {
	switch why {
	case "":
		return
	case stoppedWithdrawal:
		s.log.Error("frontend stopping: ticket not withdrawn; it may be matched with nobody following it", "ticket_id", id)
	default:
		s.log.Error("too many withdrawals tried again at once; ticket left queued", "ticket_id", id, "waiting", maxWithdrawing)
	}
	s.withdrawals.count(id, why)
}

// stopLogged is how many of the tickets a stop leaves its log names.
const stopLogged = 20

// Stop ends the withdrawals tried again, once the frontend stops: no try
// starts after it, the tickets still waiting for one are logged as left
// queued, and a creation still trying its writes gives up (finish) and
// withdraws its ticket at once, trying a refused withdrawal no more. A
// try under way finishes within its bound (withdrawTimeout), and logs its
// ticket as left if it would try again. Call it as the shutdown begins:
// the creations and tries under way then end within the server's grace.
// Later calls do nothing.
func (s *Service) Stop() {
	w := s.withdrawals
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	close(w.stopping)
	left := make([]string, 0, len(w.waiting))
	for id, timer := range w.waiting {
		if timer.Stop() { // else its try is under way
			left = append(left, id)
		}
	}
	for _, id := range left {
		delete(w.waiting, id)
	}
	w.mu.Unlock()
	if len(left) == 0 {
		return
	}
	w.ended.WithLabelValues(stoppedWithdrawal).Add(float64(len(left)))
	slices.Sort(left)
	s.log.Error("frontend stopping with withdrawals not tried again: these tickets may be matched with nobody following them",
		"tickets", len(left), "ticket_ids", left[:min(len(left), stopLogged)])
}

// jittered is d give or take a quarter: the withdrawals an outage left
// do not all come back to the claims bucket at the same instant as it
// recovers.
func jittered(d time.Duration) time.Duration {
	return d - d/4 + rand.N(d/2+1)
}

// withdrawTimeout bounds withdraw's claim, telling and notice, which run
// after the creation's own context may have ended (the deadline that
// failed it, a client that hung up).
const withdrawTimeout = 2 * events.ClaimCallTimeout

// withdrawTries is how long a withdrawal whose claim was refused for now
// (refusedNow: the claims bucket without a leader) is tried again before
// its creation answers: its bound less a call's, which is kept for the
// read of the claim that follows (withdrawFailed), or for the telling of
// a claim won as the tries end. A leader that steps down is replaced
// within a second or two (chaos S56: the matchers claimed the tickets
// 0.5-1.1 s after the refusal); a lost one (up to
// events.NATSElectionTimeout) leaves the ticket's fate unknown (fate).
const withdrawTries = withdrawTimeout - events.ClaimCallTimeout

// withdrawBackoff is the first wait between those tries, each next one
// twice the last up to withdrawBackoffMax, give or take a quarter
// (withdrawLater's are withdrawRetryFirst and withdrawRetryMax).
const (
	withdrawBackoff    = 50 * time.Millisecond
	withdrawBackoffMax = 400 * time.Millisecond
)

// fate is what a withdrawal made of its ticket, and so what its
// creation answers.
type fate int

const (
	// fateWithdrawn: withdrawn, or decided in no match (expired,
	// superseded): no matcher can put it in a match, and its creation
	// answers its error.
	fateWithdrawn fate = iota
	// fateInMatch: a matcher claimed it first; its creation answers it
	// (withdraw's View), or its client would never follow a ticket a
	// game waits for.
	fateInMatch
	// fateUnknown: its claim failed through every try (timed out, or
	// refused: the claims bucket cut off or without a leader) and no
	// claim of it could be read, so a matcher may still put it in a
	// match. A ticket its creation took first (storeAndQueue), or a
	// replacement found its player's live ticket all the same
	// (takenElsewhere), is then answered as queued, and its follower
	// hears its outcome: its match, its expiry at its max wait, or the
	// withdrawal's own claim, if it landed unanswered (read and told
	// once the claims bucket answers, tellLater; an expiry tells the
	// claim it finds too). An error instead was a no-show whenever a
	// matcher took the ticket after all (chaos S57b: 13, matched 5-7 s
	// after their creations answered 503).
	fateUnknown
)

// withdraw takes off a ticket that may be queued while its creation
// answers cause: it is claimed cancelled, its players are told and its
// shard is sent a cancel notice (end, as a DELETE does), so no matcher
// puts it in a match. It returns the ticket's fate: withdrawn, in a
// match (v says matched or assigned), or unknown (v says queued). A
// claim refused for now is tried again for up to withdrawTries first.
func (s *Service) withdraw(ctx context.Context, rec Record, cause error) (View, fate) {
	v, f, outcome := s.withdrawTry(ctx, rec, cause)
	s.withdrawals.made.WithLabelValues(outcome).Inc()
	return v, f
}

// withdrawTry is withdraw, with the outcome it is counted under.
func (s *Service) withdrawTry(ctx context.Context, rec Record, cause error) (View, fate, string) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), withdrawTimeout)
	defer cancel()
	// Tried again before the answer, not left to withdrawLater's first
	// try a second later: the matchers wait for the same bucket, and as
	// it came back they claimed the ticket for a match while its client
	// had been told an error (chaos S56: 13 no-shows). Coming back, the
	// withdrawal wins, or finds the match and the creation answers it.
	tctx, tcancel := context.WithTimeout(wctx, withdrawTries)
	defer tcancel()
	id := rec.Ticket.TicketID
	v, cur, err := s.end(tctx, rec, "", events.OwnerCancelled, withdrawnReason)
	// cur == "": only the claim was refused; a claim won and not told is
	// not claimed again here.
	s.withdrawals.whileRefused(tctx, func() bool { return cur == "" && refusedNow(err) }, func() {
		v, cur, err = s.end(tctx, rec, "", events.OwnerCancelled, withdrawnReason)
	})
	if err != nil && cur == events.OwnerCancelled && tctx.Err() != nil {
		// Won as the tries' time ran out, the telling maybe cut short: a
		// second end finds the claim its own and tells, once (Claims.Tell).
		v, cur, err = s.end(wctx, rec, "", events.OwnerCancelled, withdrawnReason)
	}
	switch {
	case err == nil:
		s.log.Warn("ticket withdrawn: its creation failed", "ticket_id", id, "cause", cause)
	case errors.Is(err, ErrAlreadyDecided) && v.Status.InMatch():
		s.log.Warn("ticket not withdrawn: a matcher put it in a match first; its creation answers it",
			"ticket_id", id, "cause", cause, "status", v.Status)
		return v, fateInMatch, matchedFirst
	case errors.Is(err, ErrAlreadyDecided):
		s.log.Warn("ticket not withdrawn: already decided, in no match", "ticket_id", id, "cause", cause, "err", err)
		return View{}, fateWithdrawn, decidedFirst
	default:
		switch owner, unread := s.withdrawFailed(wctx, rec, cause, err, cur); {
		case isMatch(owner):
			claimed := events.ClaimedResult(id, "", owner)
			return ViewOf(rec, &claimed), fateInMatch, matchedFirst
		case owner == "" && unread:
			if heard := s.heardInMatch(wctx, id); heard != nil {
				return ViewOf(rec, heard), fateInMatch, matchHeard
			}
			return ViewOf(rec, nil), fateUnknown, unknownFate
		case owner == "":
			return ViewOf(rec, nil), fateUnknown, unknownFate
		case owner != events.OwnerCancelled:
			return View{}, fateWithdrawn, decidedFirst
		}
	}
	return View{}, fateWithdrawn, withdrawnOutcome
}
