package results

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Who follows a ticket (events.Follows): every frontend's tracker
// answers the question for the tickets it holds waiters on, and
// AskFollowed asks it of them all. It is asked only of a ticket whose
// client's WebSocket was lost (package api), so it costs nothing on a
// ticket's ordinary path: no message, key or subscription per ticket,
// where a word from every frontend that starts following a ticket would
// cost one a ticket served by two frontends.
//
// "No one follows it" cancels the ticket, so it is said only when every
// frontend answered: each says it is there every
// events.FollowsRollCallEvery (the roll call) and that it leaves when it
// stops, and the asker waits for each frontend heard within
// events.FollowsRollCallLife that did not leave, itself included, once it
// has listened to the roll call long enough to have heard them all
// (events.FollowsListenFirst, after it starts or reconnects). A frontend
// that follows the ticket and cannot answer (cut off from NATS for
// minutes, its subscription refused) leaves the question incomplete, not
// answered "no".

// follows is a tracker's side of the questions. The roster is written by
// Run and read by AskFollowed.
type follows struct {
	// instance names this tracker in its answers and roll calls.
	instance string
	// prefix is what a question's subject starts with before the
	// ticket's id; rollCall is the roll call's subject.
	prefix, rollCall string
	// questions receives the questions and the roll calls.
	questions chan *nats.Msg
	// every is how often Run calls the roll and, while it does not hear
	// itself, subscribes again (events.FollowsRollCallEvery); listen is
	// how long it listens before its questions can be complete
	// (events.FollowsListenFirst; tests shorten both). last is when Run
	// last called the roll; unheard, how many of its roll calls since it
	// subscribed it has not heard since it last heard one; deaf, whether
	// it said it hears itself no more.
	every, listen time.Duration
	last          time.Time
	unheard       int
	deaf          bool

	mu        sync.Mutex
	heard     map[string]time.Time // frontends by instance, when last heard
	listening time.Time            // since when it hears the roll call
}

// questionsBuffer bounds the questions waiting for Run: past it nats.go
// drops them, and the question goes unanswered by this frontend (kept).
// A network blip that cut off thousands of clients at once has them
// asked about over a spell (package api spreads the grace); Run answers
// one in a few microseconds.
const questionsBuffer = 1 << 14

// answer answers a question heard on events.Follows (whether a waiter of
// this frontend follows the ticket), or notes a frontend's roll call.
func (t *Tracker) answer(s *state, m *nats.Msg) {
	if m.Subject == t.fol.rollCall {
		t.rollCalled(m.Data)
		return
	}
	id, ok := strings.CutPrefix(m.Subject, t.fol.prefix)
	if !ok || m.Reply == "" || strings.HasPrefix(id, "_") { // "_": a handover's, its taker answers
		return
	}
	a := events.FollowsAnswer{Frontend: t.fol.instance}
	if tk := s.tickets[id]; tk != nil && len(tk.waiters) > 0 {
		a.Followed = true
	}
	data, _ := json.Marshal(a) // always encodes
	_ = m.Respond(data)        // a lost answer leaves the question incomplete
}

// rollCalled notes a frontend's roll call: there, or gone.
func (t *Tracker) rollCalled(data []byte) {
	var rc events.RollCall
	if json.Unmarshal(data, &rc) != nil || rc.Frontend == "" {
		return
	}
	now := t.now()
	if rc.Frontend == t.fol.instance {
		t.fol.unheard = 0
	}
	t.fol.mu.Lock()
	defer t.fol.mu.Unlock()
	if rc.Leaving {
		delete(t.fol.heard, rc.Frontend)
		return
	}
	t.fol.heard[rc.Frontend] = now
}

// listenAgain restarts the wait before a question can be complete: from
// Run, when it subscribes, and when the connection is made again (the
// roll calls of the time it was down were not heard).
func (t *Tracker) listenAgain() {
	t.fol.mu.Lock()
	t.fol.listening = t.now()
	t.fol.mu.Unlock()
}

// AskFollowed asks every frontend, this one included, whether one of its
// clients follows the ticket, waiting events.FollowsAnswerWait for their
// answers (less when one follows it, or all have answered). complete is
// true when every frontend on the roster answered, this one included, and
// the roster is known: only then does "not followed" hold. An incomplete question
// (NATS cut off, a frontend that cannot answer) says nothing.
func (t *Tracker) AskFollowed(ctx context.Context, ticketID string) (followed, complete bool, err error) {
	expect, known := t.roster()
	inbox := t.nc.NewInbox()
	sub, err := t.nc.SubscribeSync(inbox)
	if err != nil {
		return false, false, fmt.Errorf("ask who follows %s: %w", ticketID, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := t.nc.PublishRequest(t.subj.Follows(ticketID), inbox, nil); err != nil {
		return false, false, fmt.Errorf("ask who follows %s: %w", ticketID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, events.FollowsAnswerWait)
	defer cancel()
	for {
		m, err := sub.NextMsgWithContext(ctx)
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			return false, false, nil
		case err != nil:
			return false, false, fmt.Errorf("ask who follows %s: %w", ticketID, err)
		}
		var a events.FollowsAnswer
		if json.Unmarshal(m.Data, &a) != nil {
			continue
		}
		if a.Followed {
			return true, true, nil
		}
		delete(expect, a.Frontend)
		if len(expect) == 0 && known {
			return false, true, nil
		}
	}
}

// roster is the frontends expected to answer: each heard at the roll
// call within events.FollowsRollCallLife that did not leave, and this
// one. known is false while this frontend has not listened to the roll
// call long enough to have heard every one (events.FollowsListenFirst).
func (t *Tracker) roster() (r map[string]bool, known bool) {
	now := t.now()
	t.fol.mu.Lock()
	defer t.fol.mu.Unlock()
	r = map[string]bool{t.fol.instance: true}
	for f, at := range t.fol.heard {
		if now.Sub(at) < events.FollowsRollCallLife {
			r[f] = true
		} else {
			delete(t.fol.heard, f)
		}
	}
	return r, now.Sub(t.fol.listening) >= t.fol.listen
}

// callRoll says this frontend is there (events.FollowsRollCall), and
// subscribes again to the questions while it does not hear its own roll
// calls: the server refused the subscription (a NATS configuration from
// before the questions, since reloaded: nats.go keeps a refused
// subscription as it was, and sends it again only on reconnecting).
// From Run, every tick, acting every follows.every.
func (t *Tracker) callRoll(sub **nats.Subscription) {
	now := t.now()
	if now.Sub(t.fol.last) < t.fol.every {
		return
	}
	t.fol.last = now
	// Deaf when its last two roll calls went unheard: counted, not
	// timed, for a Run behind on a loaded machine acts late on its ticks
	// (one roll call in two of them, its last one heard more than two
	// periods before), and its own roll calls may wait, unread, among
	// the questions.
	// It hears again once it heard its last roll call, not merely when
	// it is not deaf: subscribed again, it has not had two roll calls
	// yet to miss.
	deaf := *sub != nil && len(t.fol.questions) == 0 && t.fol.unheard >= 2
	switch {
	case deaf && !t.fol.deaf:
		t.log.Warn("not hearing its own roll call on who follows a ticket (NATS unreachable, or its configuration refusing follows.*: deploy/nats/nats.conf); a lost WebSocket client's ticket is kept until its mode's max_wait meanwhile")
		t.fol.deaf = true
	case t.fol.unheard == 0 && t.fol.deaf:
		t.log.Info("hearing its own roll call again on who follows a ticket")
		t.fol.deaf = false
	}
	if *sub != nil && deaf {
		_ = (*sub).Unsubscribe()
		*sub = nil
	}
	if *sub == nil {
		var err error
		if *sub, err = t.nc.ChanSubscribe(t.subj.AllFollows(), t.fol.questions); err != nil {
			t.log.Warn("cannot answer who follows a ticket", "err", err)
		}
		t.fol.unheard = 0
		t.listenAgain()
	}
	t.publishRollCall(false)
	t.fol.unheard++
}

// publishRollCall says this frontend is there, or leaves.
func (t *Tracker) publishRollCall(leaving bool) {
	data, _ := json.Marshal(events.RollCall{Frontend: t.fol.instance, Leaving: leaving}) // always encodes
	_ = t.nc.Publish(t.fol.rollCall, data)                                               // one lost: more within its life
}

// SetRollCall sets how often the tracker calls the roll and how long it
// listens before its questions can be complete
// (events.FollowsRollCallEvery, events.FollowsListenFirst), before Run:
// for tests. Run acts on its ticks, a second apart, at most.
func (t *Tracker) SetRollCall(every, listen time.Duration) {
	t.fol.every, t.fol.listen = every, listen
}
