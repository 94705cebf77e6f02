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
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/natsconn"
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
// events.FollowsRollCallEvery (the roll call), and the asker waits for
// each frontend heard within events.FollowsRollCallLife, itself
// included. A frontend that follows the ticket and cannot answer (cut
// off from NATS, its subscription refused) leaves the question
// unanswered, not answered "no".

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
	// every is how often Run calls the roll and, while the subscription
	// is missing, subscribes again (events.FollowsRollCallEvery; tests
	// shorten it); last is when it last did, subscribed when it last
	// subscribed, and self when it last heard its own roll call.
	every                  time.Duration
	last, subscribed, self time.Time

	mu    sync.Mutex
	heard map[string]time.Time // frontends by instance, when last heard
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
		var a events.FollowsAnswer
		if json.Unmarshal(m.Data, &a) == nil && a.Frontend != "" {
			if a.Frontend == t.fol.instance {
				t.fol.self = t.now()
			}
			t.fol.mu.Lock()
			t.fol.heard[a.Frontend] = t.now()
			t.fol.mu.Unlock()
		}
		return
	}
	id, ok := strings.CutPrefix(m.Subject, t.fol.prefix)
	if !ok || m.Reply == "" {
		return
	}
	a := events.FollowsAnswer{Frontend: t.fol.instance}
	if tk := s.tickets[id]; tk != nil && len(tk.waiters) > 0 {
		a.Followed = true
	}
	data, _ := json.Marshal(a) // always encodes
	_ = m.Respond(data)        // a lost answer leaves the question unanswered
}

// AskFollowed asks every frontend, this one included, whether one of its
// clients follows the ticket, waiting events.FollowsAnswerWait for their
// answers (less when one follows it, or all have answered). complete is
// true when every frontend heard at the roll call answered, this one
// included: only then does "not followed" hold. An incomplete question
// (NATS cut off, a frontend that cannot answer) says nothing.
func (t *Tracker) AskFollowed(ctx context.Context, ticketID string) (followed, complete bool, err error) {
	expect := t.roster()
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
	for len(expect) > 0 {
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
	}
	return false, true, nil
}

// roster is the frontends expected to answer: each heard at the roll
// call within events.FollowsRollCallLife, and this one.
func (t *Tracker) roster() map[string]bool {
	now := t.now()
	t.fol.mu.Lock()
	defer t.fol.mu.Unlock()
	r := map[string]bool{t.fol.instance: true}
	for f, at := range t.fol.heard {
		if now.Sub(at) < events.FollowsRollCallLife {
			r[f] = true
		} else {
			delete(t.fol.heard, f)
		}
	}
	return r
}

// callRoll says this frontend is there (events.FollowsRollCall), and
// subscribes again to the questions while it does not hear its own roll
// calls: the server refused the subscription (a NATS configuration from
// before the questions, since reloaded: nats.go keeps a refused
// subscription as it was, and sends it again only on reconnecting).
// From Run, every tick, acting every follows.every.
func (t *Tracker) callRoll(ctx context.Context, sub **nats.Subscription) {
	now := t.now()
	if now.Sub(t.fol.last) < t.fol.every {
		return
	}
	t.fol.last = now
	deaf := now.Sub(t.fol.self) > 2*t.fol.every && now.Sub(t.fol.subscribed) > 2*t.fol.every
	if *sub != nil && deaf {
		_ = (*sub).Unsubscribe()
		*sub = nil
	}
	if *sub == nil || !(*sub).IsValid() {
		*sub, t.fol.subscribed = t.subscribeFollows(ctx), now
	}
	data, _ := json.Marshal(events.FollowsAnswer{Frontend: t.fol.instance}) // always encodes
	_ = t.nc.Publish(t.fol.rollCall, data)                                  // one lost: two more within its life
}

// subscribeFollows makes the subscription to the questions and the roll
// call, after the results' (whose refusal Run must see), and logs in the
// background a refusal of it: Run serves tickets without waiting. While
// the server refuses it (a NATS configuration from before the questions)
// this frontend answers nothing, so no question is complete and a lost
// client's ticket is kept, as before; callRoll makes it again.
func (t *Tracker) subscribeFollows(ctx context.Context) *nats.Subscription {
	before := t.nc.LastError()
	sub, err := t.nc.ChanSubscribe(t.subj.AllFollows(), t.fol.questions)
	if err != nil {
		t.log.Warn("cannot answer who follows a ticket", "err", err)
		return nil
	}
	go func() {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if t.nc.FlushWithContext(fctx) != nil {
			return // unconfirmed: nats.go sends it again on reconnecting
		}
		if last := t.nc.LastError(); last != before && natsconn.SubscriptionRefused(last, t.subj.AllFollows()) {
			t.log.Warn("NATS refuses the frontend's answers to who follows a ticket: a lost WebSocket client's ticket is kept until its mode's max_wait (deploy/nats/nats.conf, follows.*)", "err", last)
		}
	}()
	return sub
}
