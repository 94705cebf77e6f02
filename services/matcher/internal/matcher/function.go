package matcher

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/matchfn"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// Match functions: a mode whose rule set names a match
// function (rules.MatchFunction) has its matches proposed by that NATS
// service (package matchfn) instead of formed by the built-in rules.
//
// Concurrency: as for commits, the runner's goroutine owns all state and
// the network is off it. At a sweep, for each such mode with no call in
// flight, the runner snapshots up to MaxCandidates of the oldest waiting
// tickets, or once every recallEvery half of them and the rest in turn
// round the pool (those in flight or being taken in are not in it), and
// calls the function from a goroutine of its own, bounded by the mode's
// Timeout; the outcome comes back on functions.replies and is settled on the
// runner's goroutine. The tickets stay in the pool meanwhile: a call
// holds none, so a runner that stops cuts the call short (and waits for
// it), drops the outcome and hands its tickets back as always. At most
// one call per mode and shard is in flight, and a new one goes out only
// when the candidates changed or recallEvery passed, so a function sees
// each pool change once.
//
// Trust: nothing a function replies can put a ticket in two matches or
// lose one. Each proposal is checked against the request as sent
// (matchfn.CheckReply) and then against the pool as it is now
// (pool.Take: each ticket still waiting as the very entry sent, each
// fitting the match by the mode's rules); a good one is taken out of the
// pool and committed by formMatch under the same claims as any match,
// and a bad one is logged, counted and dropped, its tickets left waiting.
// Tickets leave the pool only into a commit, or by the usual expiry and
// cancel notices.
//
// Failure: an error reply, a timeout, no function serving, a reply that
// cannot be read, or one whose every proposal is refused for anything
// but a ticket gone meanwhile (a function that misbehaves: player ids
// for ticket ids, teams of the wrong size) marks the mode failing until
// a call is answered again with none such. A failing mode with on_failure "fallback" forms its matches by
// the built-in rules (builtIn, asked by tryMatch); with "wait" it forms
// none, and its tickets wait and expire as usual. A failing function is
// called again every recallEvery, even with no candidates, so that the
// mode leaves the built-in rules as soon as it answers.

// recallEvery is how often a mode's function is called though its
// candidates did not change (their waits did, which widens what fits),
// and how often a failing function is tried again.
const recallEvery = time.Second

// functions are a runner's calls to its modes' match functions.
type functions struct {
	byMode  map[string]*function
	replies chan functionReply
	// calls are the calls under way; the runner waits for them to end
	// (their context ends with it) before it counts as stopped.
	calls sync.WaitGroup
}

func newFunctions() *functions {
	return &functions{byMode: map[string]*function{}, replies: make(chan functionReply)}
}

// function is the state of one mode's match function in one shard.
type function struct {
	calling bool
	// failing: the last call failed; the mode's on_failure applies.
	failing bool
	// sig is the oldest candidates of the last call, and recalled when
	// the last call of every recallEvery went out (callFunction).
	sig      uint64
	recalled time.Time
}

// functionReply is a call's outcome.
type functionReply struct {
	mode    string
	service string
	p       *pool.Pool
	// req is the request as sent (matchfn.Call may have left out its
	// youngest candidates); sent are its candidates' entries, by ticket.
	req   matchfn.Request
	sent  map[string]*pool.Entry
	reply matchfn.Reply
	err   error
}

// builtIn reports whether the built-in rules form p's matches: always
// for a mode without a match function; for one with, only while its
// function fails and the mode falls back.
func (r *runner) builtIn(p *pool.Pool) bool {
	m := p.Mode()
	if m.MatchFunction == nil {
		return true
	}
	h := r.functions.byMode[m.Name]
	return h != nil && h.failing && m.MatchFunction.OnFailure == rules.OnFailureFallback
}

// callFunction calls p's mode's match function if it has one, no call is
// in flight, and the candidates changed or recallEvery passed.
func (r *runner) callFunction(ctx context.Context, p *pool.Pool, now time.Time) {
	m := p.Mode()
	mf := m.MatchFunction
	if mf == nil {
		return
	}
	h := r.functions.byMode[m.Name]
	if h == nil {
		h = &function{}
		r.functions.byMode[m.Name] = h
	}
	if h.calling {
		return
	}
	entries := r.candidates(p, h, now)
	if entries == nil {
		return
	}
	h.calling = true
	// The mode's StartEarly is not sent and does not apply: a function
	// proposes full matches only (matchfn has no word for a room opened
	// early, and CheckReply refuses a proposal of fewer teams than
	// Teams). A mode a function matches starts early only while the
	// built-in rules stand in for it (builtIn: failing, falling back).
	out := functionReply{mode: m.Name, service: mf.Service, p: p, sent: make(map[string]*pool.Entry, len(entries)),
		req: matchfn.Request{Mode: matchfn.Mode{Name: m.Name, Teams: m.Teams, TeamSize: m.TeamSize},
			Region: r.shard.Region, Tier: r.shard.Tier, Candidates: make([]matchfn.Candidate, len(entries))}}
	attrs := make([]string, len(entries)) // decoded off this goroutine
	for i, e := range entries {
		out.sent[e.TicketID] = e
		out.req.Candidates[i] = candidateOf(e, now)
		attrs[i] = e.Attrs
	}
	subject := r.subj.MatchFunction(mf.Service)
	timeout := time.Duration(mf.Timeout)
	r.functions.calls.Go(func() {
		// Only the candidates whose attributes (as stored, about as long
		// as sent) may fit a request are decoded: matchfn.Call leaves out
		// the rest, and decoding ten thousand to send seven hundred
		// was most of a call's cost.
		size := 0
		for i, a := range attrs {
			if size += len(a) + len(out.req.Candidates[i].TicketID); size > matchfn.MaxMessageBytes {
				out.req.Candidates = out.req.Candidates[:i]
				break
			}
			// Attrs written by SetAttributes always decode; one that did
			// not would go without (the pool still judges the rules).
			out.req.Candidates[i].Attributes, _ = (&pool.Entry{Attrs: a}).Attributes()
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		out.reply, out.err = matchfn.Call(cctx, r.js.Conn(), subject, &out.req)
		cancel()
		select {
		case r.functions.replies <- out:
		case <-r.stopC: // the runner hands its tickets back; nothing was taken
		}
	})
}

// candidates are the tickets of p to call its mode's function with now
// (h its state), or nil when no call is due. They are the oldest,
// whenever they change; and every recallEvery, whatever else was called
// meanwhile, the oldest half and the rest in turn (pool.Sweep): a
// function that will not match the oldest (a build no one else plays)
// kept every ticket behind them from its sight until they expired, and
// in a busy pool, whose oldest change at every sweep, the turn must not
// wait for a second without a call. While the built-in rules stand in
// for the function (builtIn) their anchors take the turn, and the call
// that sees whether it answers again shows the oldest.
func (r *runner) candidates(p *pool.Pool, h *function, now time.Time) []*pool.Entry {
	n := p.Mode().MatchFunction.MaxCandidates
	due := now.Sub(h.recalled) >= recallEvery
	entries := p.Oldest(n)
	sig := signature(entries)
	switch {
	case !due && (h.failing || sig == h.sig):
		return nil // nothing new to ask, or too soon to try a failing function again
	case len(entries) < 2 && !h.failing:
		return nil // nothing to match; a failing function is asked anyway, to see it answer again
	}
	h.sig = sig // the oldest's, even for a turn's call: it makes them no news
	if due {
		h.recalled = now
		if !r.builtIn(p) {
			entries = p.Sweep(n)
		}
	}
	return entries
}

// candidateOf is e as a function sees it, but for its attributes.
func candidateOf(e *pool.Entry, now time.Time) matchfn.Candidate {
	c := matchfn.Candidate{TicketID: e.TicketID, Players: e.Players, Skill: e.Skill, WaitedMS: max(e.Waited(now).Milliseconds(), 0)}
	if len(e.Latencies) > 0 {
		c.LatenciesMS = make(map[string]int, len(e.Latencies))
		for _, l := range e.Latencies {
			c.LatenciesMS[l.Region] = l.MS
		}
	}
	return c
}

// signature names a list of waiting tickets: the messages, in order.
func signature(entries []*pool.Entry) uint64 {
	h := fnv.New64a()
	var b []byte
	for _, e := range entries {
		b = append(append(b[:0], e.TicketID...), 0)
		b = strconv.AppendUint(b, e.Seq, 10)
		_, _ = h.Write(b) // a hash.Hash never fails to write
	}
	return h.Sum64()
}

// settleCall takes a call's outcome back: on success its good proposals
// are committed; on failure the mode is failing until a call succeeds.
func (r *runner) settleCall(ctx context.Context, out functionReply) {
	h := r.functions.byMode[out.mode]
	h.calling = false
	log := r.log.With("mode", out.mode, "match_function", out.service)
	if out.err != nil {
		kind := failureKind(out.err)
		r.met.functionCalls.WithLabelValues(kind).Inc()
		level := slog.LevelWarn
		if h.failing {
			level = slog.LevelDebug // told when it began; the metric counts every one
		}
		log.Log(ctx, level, "match function failed; "+then(out.p)+" until it answers", "failure", kind, "err", out.err, "candidates", len(out.req.Candidates))
		h.failing = true
		return
	}
	r.met.functionCalls.WithLabelValues("answered").Inc()
	v := answered
	if m := out.p.Mode(); m.Teams != out.req.Mode.Teams || m.TeamSize != out.req.Mode.TeamSize {
		log.Info("mode's teams changed by a reload during the call; its proposals dropped")
	} else {
		v = r.propose(ctx, log, out, h.failing)
	}
	switch {
	case v == misbehaved:
		if !h.failing {
			log.Warn("match function proposes only matches that are refused; " + then(out.p) + " until it proposes one that is not")
		}
		h.failing = true
	case v == answered && h.failing:
		log.Info("match function answers again")
		h.failing = false
	}
}

// verdict is what a reply says of its function (propose).
type verdict int

const (
	// answered: a proposal was accepted, or none was made.
	answered verdict = iota
	// misbehaved: every proposal was refused, one at least for the
	// function's fault (not a ticket gone meanwhile).
	misbehaved
	// raced: every proposal was refused for tickets that left the pool
	// during the call (matched meanwhile, by the built-in rules while
	// they stand in): it says nothing of the function.
	raced
)

// then is what a failing function's mode does, as said in the logs.
func then(p *pool.Pool) string {
	if mf := p.Mode().MatchFunction; mf == nil || mf.OnFailure == rules.OnFailureFallback {
		return "the built-in rules match the mode"
	}
	return "the mode waits"
}

// loggedProposals is the most proposals of one reply logged as dropped:
// the metric counts every one, and a reply may hold
// matchfn.MaxMatches.
const loggedProposals = 5

// propose commits the good proposals of a reply and drops the others,
// logged (at Debug while the function is failing already: the metric
// counts them, and it was said when it began), and says what the reply
// says of its function.
func (r *runner) propose(ctx context.Context, log *slog.Logger, out functionReply, failing bool) verdict {
	verdicts := matchfn.CheckReply(&out.req, &out.reply)
	now := r.now()
	level := slog.LevelWarn
	if failing {
		level = slog.LevelDebug
	}
	accepted, faults := 0, 0
	defer func() {
		if dropped := len(out.reply.Matches) - accepted; dropped > loggedProposals {
			log.Log(ctx, level, "match function proposals dropped", "dropped", dropped, "logged", loggedProposals, "proposals", len(out.reply.Matches))
		}
	}()
	for i, prop := range out.reply.Matches {
		err := verdicts[i]
		var teams [][]*pool.Entry
		if err == nil {
			teams = make([][]*pool.Entry, len(prop.Teams))
			for t, ids := range prop.Teams {
				for _, id := range ids {
					teams[t] = append(teams[t], out.sent[id]) // CheckReply: every id was sent
				}
			}
			err = out.p.Take(teams, now)
		}
		if err != nil {
			reason := proposalReason(err)
			r.met.proposals.WithLabelValues(string(reason)).Inc()
			if reason != matchfn.ReasonNotWaiting {
				faults++
			}
			if i-accepted < loggedProposals {
				log.Log(ctx, level, "match function proposal dropped", "reason", reason, "err", err, "proposal", prop.String())
			}
			continue
		}
		accepted++
		r.met.proposals.WithLabelValues("accepted").Inc()
		r.formMatch(ctx, out.p, teams, now)
	}
	switch {
	case accepted > 0 || len(out.reply.Matches) == 0:
		return answered
	case faults > 0:
		return misbehaved
	}
	return raced
}

// proposalReason is why a proposal was refused, for the metric's label.
func proposalReason(err error) matchfn.Reason {
	var pe *matchfn.ProposalError
	switch {
	case errors.As(err, &pe):
		return pe.Reason
	case errors.Is(err, pool.ErrUnfit):
		return matchfn.ReasonRules
	case errors.Is(err, pool.ErrNotWaiting):
		return matchfn.ReasonNotWaiting
	default:
		return matchfn.ReasonTicketTwice // Take's only other refusal
	}
}

// failureKind names a failed call for the metric's label and the log.
func failureKind(err error) string {
	var fe *matchfn.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &fe):
		return "error"
	case errors.Is(err, events.ErrInvalid):
		return "malformed"
	case errors.Is(err, matchfn.ErrNoFunction):
		return "unavailable"
	default:
		return "failed"
	}
}
