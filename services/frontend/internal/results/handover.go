package results

import (
	"context"
	"encoding/json"
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
// in its stead; and while it runs it takes those of others.

// handovers is a tracker's side of the handovers, set by SetHandover.
type handovers struct {
	msgs chan *nats.Msg
	// take is given the tickets another frontend handed over; pending
	// returns those to hand over (both the API's).
	take    func(tickets []string)
	pending func() []string
}

// handoverWait bounds the flush of the handovers at Run's end: the
// frontend is stopping, and a handover that cannot be sent leaves the
// tickets kept, as before there were handovers.
const handoverWait = 2 * time.Second

// SetHandover makes Run take the tickets other frontends hand over (take
// is called from Run's loop: it must not block) and, at its end, hand
// over those pending returns. Call it before Run; without it the tracker
// neither takes nor hands over (-lost-grace off).
func (t *Tracker) SetHandover(take func(tickets []string), pending func() []string) {
	t.handing.take, t.handing.pending = take, pending
}

// subscribeHandovers joins the frontends' queue group on the handovers,
// or returns nil (no SetHandover, or NATS refused: the tickets handed
// over go to another frontend, or are kept).
func (t *Tracker) subscribeHandovers() *nats.Subscription {
	if t.handing.take == nil {
		return nil
	}
	sub, err := t.nc.ChanQueueSubscribe(t.subj.FollowsHandover(), events.FollowsHandoverQueue, t.handing.msgs)
	if err != nil {
		t.log.Warn("cannot take the tickets a stopping frontend hands over", "err", err)
		return nil
	}
	return sub
}

// tookOver gives the API the tickets of a handover (from Run). Only a
// frontend publishes there (deploy/nats/nats.conf); ids that are no
// ticket id are dropped all the same, as a question's subject is made of
// them.
func (t *Tracker) tookOver(m *nats.Msg) {
	var h events.Handover
	if json.Unmarshal(m.Data, &h) != nil || h.Frontend == t.fol.instance {
		return
	}
	ids := make([]string, 0, min(len(h.Tickets), events.MaxHandoverTickets))
	for _, id := range h.Tickets[:min(len(h.Tickets), events.MaxHandoverTickets)] {
		if events.CheckToken(id) == nil {
			ids = append(ids, id)
		}
	}
	if len(ids) > 0 {
		t.log.Debug("took over the tickets a stopping frontend would have asked about", "from", h.Frontend, "tickets", len(ids))
		t.handing.take(ids)
	}
}

// handOver, at Run's end, stops taking handovers (those already heard go
// to the API, to be handed over with its own) and hands over the API's
// pending tickets.
func (t *Tracker) handOver(sub *nats.Subscription) {
	if t.handing.pending == nil {
		return
	}
	if sub != nil {
		_ = sub.Unsubscribe()
	}
	for len(t.handing.msgs) > 0 {
		t.tookOver(<-t.handing.msgs)
	}
	tickets := t.handing.pending()
	if len(tickets) == 0 {
		return
	}
	for lo := 0; lo < len(tickets); lo += events.MaxHandoverTickets {
		data, _ := json.Marshal(events.Handover{Frontend: t.fol.instance, Tickets: tickets[lo:min(lo+events.MaxHandoverTickets, len(tickets))]}) // always encodes
		if err := t.nc.Publish(t.subj.FollowsHandover(), data); err != nil {
			t.log.Warn("tickets to ask about not handed over; kept until their mode's max_wait", "tickets", len(tickets)-lo, "err", err)
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), handoverWait)
	defer cancel()
	if err := t.nc.FlushWithContext(ctx); err != nil {
		t.log.Warn("tickets to ask about maybe not handed over; kept until their mode's max_wait", "tickets", len(tickets), "err", err)
		return
	}
	t.log.Info("handed over the tickets of lost clients to ask about", "tickets", len(tickets))
}
