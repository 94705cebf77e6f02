package results

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/natsconn"
)

// Whether anyone follows a ticket (events.Follows): every frontend's
// tracker answers the question for the tickets it holds waiters on, and
// Followed asks it of them all. The question is asked only of a ticket
// whose client's WebSocket was lost (package api), so it costs nothing
// on a ticket's ordinary path: no message, no key, no subscription per
// ticket, where a word from every frontend that starts following a
// ticket would cost one a ticket served by two frontends.

// answer answers a question heard on events.Follows: whether a waiter of
// this frontend follows the ticket.
func (t *Tracker) answer(s *state, m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	id, ok := strings.CutPrefix(m.Subject, t.followsPrefix)
	if !ok {
		return
	}
	ans := events.NotFollowedHere
	if tk := s.tickets[id]; tk != nil && len(tk.waiters) > 0 {
		ans = events.FollowedHere
	}
	_ = m.Respond(ans) // a lost answer reads as one not given
}

// Followed asks every frontend, this one included, whether one of its
// clients follows the ticket, waiting events.FollowsAnswerWait for their
// answers (less when one follows it). answered is false when no answer
// came, not even this frontend's own: the question did not go round
// (NATS cut off, or a NATS configuration that does not let the frontend
// ask or answer it), and no one can say the ticket is not followed.
func (t *Tracker) Followed(ctx context.Context, ticketID string) (followed, answered bool, err error) {
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
			return false, answered, nil
		case err != nil:
			return false, answered, fmt.Errorf("ask who follows %s: %w", ticketID, err)
		}
		answered = true
		if bytes.Equal(m.Data, events.FollowedHere) {
			return true, true, nil
		}
	}
}

// subscribeFollows makes the subscription answering events.Follows,
// after the results' (whose refusal Run must see). A frontend whose NATS
// user may not take it (a configuration from before the question) still
// runs: its questions go unanswered, and a lost client's ticket is then
// kept, as before.
func (t *Tracker) subscribeFollows(ctx context.Context) *nats.Subscription {
	before := t.nc.LastError()
	sub, err := t.nc.ChanSubscribe(t.subj.AllFollows(), t.questions)
	if err != nil {
		t.log.Warn("cannot answer who follows a ticket", "err", err)
		return nil
	}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = t.nc.FlushWithContext(fctx) // unconfirmed, nats.go sends it again on reconnecting
	if last := t.nc.LastError(); last != before && natsconn.SubscriptionRefused(last, t.subj.AllFollows()) {
		t.log.Warn("NATS refuses the frontend's answers to who follows a ticket: a lost WebSocket client's ticket is kept until its mode's max_wait (deploy/nats/nats.conf, follows.*)", "err", last)
		_ = sub.Unsubscribe()
		return nil
	}
	return sub
}

// questionsBuffer bounds the questions waiting for Run: past it nats.go
// drops them, and a frontend that follows a ticket whose question it
// dropped does not say so (others' answers then read "not followed").
// A network blip that cut off thousands of clients at once has them
// asked about over a spell (package api spreads the grace); Run answers
// one in about a microsecond.
const questionsBuffer = 1 << 14
