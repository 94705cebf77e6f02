package api

import (
	"slices"
	"sync"
	"time"
)

// Handing over who follows a ticket (results.Tracker.SetHandover,
// events.FollowsHandover). A frontend that stops asks no more
// (askWhoFollows), so the tickets it would still have asked about go to
// another frontend, which asks in its stead a grace later: those of its
// lost /ws/events clients, and those of the clients it let go with 1012
// to follow elsewhere (a rolling deploy), whose players may not come back
// (a page closed in that moment). Without it they were matched until
// their mode's max_wait.

// asking is what this frontend would ask about: by ticket, how many
// chains of questions of it are pending (a client lost twice has two),
// and the tickets of the /ws/events sockets it serves (noteWhileServed).
type asking struct {
	mu      sync.Mutex
	tickets map[string]int
}

// willAsk notes a chain of questions of ticketID to come.
func (a *API) willAsk(ticketID string) {
	a.ask.mu.Lock()
	defer a.ask.mu.Unlock()
	a.ask.tickets[ticketID]++
}

// doneAsking notes that a chain of questions of ticketID ended (the
// ticket decided, cancelled, or kept until its max_wait).
func (a *API) doneAsking(ticketID string) {
	a.ask.mu.Lock()
	defer a.ask.mu.Unlock()
	if a.ask.tickets[ticketID]--; a.ask.tickets[ticketID] <= 0 {
		delete(a.ask.tickets, ticketID)
	}
}

// noteWhileServed notes the ticket of a /ws/events socket from its
// creation on, and returns what forgets it when the socket's handler
// ends, unless the frontend is stopping: then it is handed over (the
// socket closed with 1012, or still on its way: a handler in its first
// write when the handover is made, which waits for no handler). The
// demo's /ws tickets are cancelled with their sockets: none is noted.
func (a *API) noteWhileServed(ep endpoint, ticketID string) (forget func()) {
	if !ep.handsOver || a.cfg.LostGrace <= 0 {
		return func() {}
	}
	a.willAsk(ticketID)
	return func() {
		select {
		case <-a.done:
		default:
			a.doneAsking(ticketID)
		}
	}
}

// takeOver asks, a grace from now, about the tickets a stopping frontend
// handed over, but those this one asks about already (from a NATS
// callback: it does not block). Their earlier answers are not known
// (asked.handedOver).
func (a *API) takeOver(ticketIDs []string) {
	for _, id := range ticketIDs {
		a.ask.mu.Lock()
		mine := a.ask.tickets[id] > 0
		if !mine {
			a.ask.tickets[id] = 1
		}
		a.ask.mu.Unlock()
		if !mine {
			time.AfterFunc(a.lostGrace(), func() { a.askWhoFollows(id, asked{followed: true, handedOver: true}) })
		}
	}
}

// toHandOver is what this frontend would still ask about: the tracker
// hands it over at its end.
func (a *API) toHandOver() []string {
	a.ask.mu.Lock()
	defer a.ask.mu.Unlock()
	ids := make([]string, 0, len(a.ask.tickets))
	for id := range a.ask.tickets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
