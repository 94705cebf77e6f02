package results

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Handing over who follows a ticket (events.FollowsHandover). The API asks
// about the tickets of its lost clients a grace after they were lost, and
// a frontend that stops asks no more: the tickets of the clients it let go
// at a rolling deploy (1012, to follow on another frontend) that never
// came back, and of those it lost just before, would be matched until
// their mode's max_wait. So at Run's end the tracker hands the API's
// pending tickets to one other frontend (a queue group), whose API asks
// in its stead, with the roster it heard; and while it runs it takes
// those of others.

// handovers is a tracker's side of the handovers, set by SetHandover:
// take is given the tickets another frontend handed over; pending
// returns those to hand over (both the API's).
type handovers struct {
	take    func(tickets []string)
	pending func() []string
}

// handoverWait bounds each wait of the handover at Run's end (the
// subscription's drain, the takers' answers): the frontend is stopping, and a
// handover that cannot be sent leaves the tickets kept, as before there
// were handovers.
const handoverWait = 2 * time.Second

// SetHandover makes Run take the tickets other frontends hand over (take
// is called from a NATS callback: it must not block) and, at its end,
// hand over those pending returns. Before Run or while it runs (it
// subscribes at its next tick); without it the tracker neither takes nor
// hands over (-lost-grace off).
func (t *Tracker) SetHandover(take func(tickets []string), pending func() []string) {
	t.handing.Store(&handovers{take: take, pending: pending})
}

// subscribeHandovers joins the frontends' queue group on the handovers
// once SetHandover was called: tried says it was (sub nil: NATS refused,
// and the tickets handed over go to another frontend, or are kept). A
// callback, not Run's loop: a few frontends stopping at once hand over
// tens of messages of a thousand tickets each, which a channel's buffer
// dropped, and taking them needs nothing of Run's state.
func (t *Tracker) subscribeHandovers() (sub *nats.Subscription, tried bool) {
	if t.handing.Load() == nil {
		return nil, false
	}
	sub, err := t.nc.QueueSubscribe(t.subj.FollowsHandover(), events.FollowsHandoverQueue, t.tookOver)
	if err != nil {
		t.log.Warn("cannot take the tickets a stopping frontend hands over", "err", err)
		return nil, true
	}
	return sub, true
}

// tookOver gives the API the tickets of a handover, and notes the
// frontends its sender heard that this one did not. Only a frontend
// publishes there (deploy/nats/nats.conf); ids that are no ticket id are
// dropped all the same, as a question's subject is made of them.
func (t *Tracker) tookOver(m *nats.Msg) {
	var h events.Handover
	if json.Unmarshal(m.Data, &h) != nil || h.Frontend == t.fol.instance {
		return
	}
	t.heardOf(h.Roster)
	ids := make([]string, 0, min(len(h.Tickets), events.MaxHandoverTickets))
	for _, id := range h.Tickets[:min(len(h.Tickets), events.MaxHandoverTickets)] {
		if events.CheckToken(id) == nil && !strings.HasPrefix(id, "_") { // "_": the roll call's, the handover's
			ids = append(ids, id)
		}
	}
	if len(ids) > 0 {
		t.log.Debug("took over the tickets a stopping frontend would have asked about", "from", h.Frontend, "tickets", len(ids))
		t.handing.Load().take(ids) // set: it subscribed
	}
	if m.Reply != "" { // taken: its sender logs so
		a := nats.NewMsg(m.Reply)
		a.Header.Set(events.HeaderHandoverTaken, strconv.Itoa(len(ids)))
		_ = t.nc.PublishMsg(a)
	}
}

// heardOf notes the frontends of a handover's roster as heard when its
// sender last heard them, unless this one heard them since (or they are
// past events.FollowsRollCallLife, or it is this one).
func (t *Tracker) heardOf(roster map[string]int64) {
	if len(roster) > events.MaxHandoverRoster {
		return
	}
	now := t.now()
	t.fol.mu.Lock()
	defer t.fol.mu.Unlock()
	for f, ms := range roster {
		ago := time.Duration(ms) * time.Millisecond
		if f == t.fol.instance || f == "" || ms < 0 || ago >= events.FollowsRollCallLife {
			continue
		}
		if at := now.Add(-ago); at.After(t.fol.heard[f]) {
			t.fol.heard[f] = at
		}
	}
}

// rosterAges is the roster this frontend heard, by instance, how many
// milliseconds ago, itself left out (it leaves).
func (t *Tracker) rosterAges() map[string]int64 {
	now := t.now()
	t.fol.mu.Lock()
	defer t.fol.mu.Unlock()
	r := make(map[string]int64, len(t.fol.heard))
	for f, at := range t.fol.heard {
		if f != t.fol.instance && now.Sub(at) < events.FollowsRollCallLife {
			r[f] = now.Sub(at).Milliseconds()
		}
	}
	return r
}

// handOver, at Run's end, stops taking handovers (those already routed
// here are taken: the subscription is drained, not dropped) and hands
// over the API's pending tickets, with the roster. Each message is a
// request its taker answers once it took it, so the log says what was
// taken: core NATS tells a publisher nothing, and the handover of the
// last frontend, or of a frontend whose version's others do not take
// handovers, went nowhere while it logged "handed over".
func (t *Tracker) handOver(sub *nats.Subscription) {
	h := t.handing.Load()
	if h == nil {
		return
	}
	if sub != nil && sub.Drain() == nil {
		for end := time.Now().Add(handoverWait); sub.IsValid() && time.Now().Before(end); {
			time.Sleep(5 * time.Millisecond)
		}
	}
	tickets := h.pending()
	if len(tickets) == 0 {
		return
	}
	taken, err := t.handOverAll(tickets)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		t.log.Warn("no other frontend takes handovers (none runs, or none of this version): tickets of lost clients kept until their mode's max_wait",
			"tickets", len(tickets)-taken, "handed_over", taken)
	case err != nil:
		t.log.Warn("tickets of lost clients not handed over, or their taking not confirmed: kept until their mode's max_wait",
			"tickets", len(tickets)-taken, "handed_over", taken, "err", err)
	default:
		t.log.Info("handed over the tickets of lost clients to ask about", "tickets", taken)
	}
}

// handOverAll sends tickets as Handovers, requests that share one inbox,
// every one before it waits (a taker that does not answer, of an older
// version, would otherwise keep the ones after from being sent), and
// counts what the takers said they took until each answered or
// handoverWait passed. It awaits the takers' answers
// (HeaderHandoverTaken), not the first ones: an older frontend's question
// handler answers every request under AllFollows. nats.ErrNoResponders:
// no frontend subscribed at all.
func (t *Tracker) handOverAll(tickets []string) (taken int, err error) {
	inbox := t.nc.NewInbox()
	sub, err := t.nc.SubscribeSync(inbox)
	if err != nil {
		return 0, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	roster := t.rosterAges()
	sent := 0
	for lo := 0; lo < len(tickets); lo += events.MaxHandoverTickets {
		chunk := tickets[lo:min(lo+events.MaxHandoverTickets, len(tickets))]
		data, _ := json.Marshal(events.Handover{Frontend: t.fol.instance, Tickets: chunk, Roster: roster}) // always encodes
		if err := t.nc.PublishMsg(&nats.Msg{Subject: t.subj.FollowsHandover(), Reply: inbox, Data: data}); err != nil {
			return 0, err
		}
		sent++
	}
	ctx, cancel := context.WithTimeout(context.Background(), handoverWait)
	defer cancel()
	for answered := 0; answered < sent; {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return taken, err // nats.ErrNoResponders for the server's 503
		}
		if n, err := strconv.Atoi(m.Header.Get(events.HeaderHandoverTaken)); err == nil {
			taken += n
			answered++
		}
	}
	return taken, nil
}
