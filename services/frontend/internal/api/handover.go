package api

import (
	"slices"
	"sync"
	"sync/atomic"
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
// chains of questions of it are pending (a client lost twice has two);
// following counts the WebSocket handlers running, waited for before the
// handover so that those let go at shutdown have noted their tickets.
type asking struct {
	mu        sync.Mutex
	tickets   map[string]int
	following atomic.Int64
}

// followersWait bounds the wait for the WebSocket handlers at the
// handover: each notes its ticket and closes its socket at once on
// shutdown, but a hijacked connection is not waited for by the server.
const followersWait = 2 * time.Second

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

// takeOver asks, a grace from now, about the tickets a stopping frontend
// handed over, but those this one asks about already (from the tracker's
// loop: it does not block).
func (a *API) takeOver(ticketIDs []string) {
	for _, id := range ticketIDs {
		a.ask.mu.Lock()
		mine := a.ask.tickets[id] > 0
		if !mine {
			a.ask.tickets[id] = 1
		}
		a.ask.mu.Unlock()
		if !mine {
			time.AfterFunc(a.lostGrace(), func() { a.askWhoFollows(id, asked{}) })
		}
	}
}

// toHandOver is what this frontend would still ask about, once its
// WebSocket handlers have ended (followersWait at most): the tracker hands
// it over at its end.
func (a *API) toHandOver() []string {
	for deadline := time.Now().Add(followersWait); a.ask.following.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	a.ask.mu.Lock()
	defer a.ask.mu.Unlock()
	ids := make([]string, 0, len(a.ask.tickets))
	for id := range a.ask.tickets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
