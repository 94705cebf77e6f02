package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

// ticketEvents streams a ticket's status changes as Server-Sent Events:
//
//	id: <rank>  (1 queued, 2 matched, 3 a terminal status)
//	event: status
//	data: <the ticket view, as GET /v1/tickets/{id} answers>
//
// While the ticket is queued, its queued event comes again, under the
// same id 1, when its expected wait moves (refresher): the id is the
// status's rank, so a refresh is no new status and Last-Event-ID keeps
// its three values. A client that reconnects with Last-Event-ID gets only
// what is newer: a client that has id 1 is not sent queued again on
// reconnecting, only later refreshes (counted from the figure of its
// reconnection) and the statuses after it. The
// stream ends after the terminal status. Any frontend instance can serve
// it: the frontend that created the ticket answers from its tracker alone;
// another reads the current state from JetStream and then follows the
// player's result subject. Only the ticket's players and the server role
// may follow it (anyone else gets 404), and each client holds at most
// MaxStreamsPerClient streams and WebSockets at once.
func (a *API) ticketEvents(w http.ResponseWriter, r *http.Request, caller identity.Caller) {
	id := r.PathValue("id")
	last, ok := a.lastEventID(w, r)
	if !ok {
		return
	}
	// The stream is held before anything is read or followed: a client
	// at its cap of streams costs no JetStream reads and starts no
	// tracking (which, for a ticket its record alone knows, expires it
	// at its max wait).
	release, ok := a.holdStream(w, r, caller)
	if !ok {
		return
	}
	defer release()
	rec, view, updates, stop, ok := a.follow(w, r, caller, id)
	if !ok {
		return
	}
	// Stopped aside: a terminal event is sent when the handler returns
	// (sseWriter.write), and the stop is a call to the tracker's one
	// goroutine, which a burst of results or a stopped tracker (5 s)
	// would hold the player's outcome behind (review R11).
	defer func() { go stop() }()
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeJSON(w, http.StatusInternalServerError, ErrorBody{Error: "streaming unsupported"})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	a.met.open.WithLabelValues("sse").Inc()
	defer a.met.open.WithLabelValues("sse").Dec()

	sw := &sseWriter{ctx: r.Context(), w: w, flusher: flusher, rc: http.NewResponseController(w), timeout: a.cfg.WriteTimeout, last: last, ref: &refresher{a: a}}
	if sw.send(view) || updates == nil {
		return
	}
	a.streamEvents(r.Context(), sw, caller, rec, updates)
}

// lastEventID reads the client's Last-Event-ID (0 without one); ok is
// false if it answered 400 for one this endpoint never sends.
func (a *API) lastEventID(w http.ResponseWriter, r *http.Request) (last int, ok bool) {
	h := r.Header.Get(ticketapi.HeaderLastEventID)
	if h == "" {
		return 0, true
	}
	n, err := strconv.Atoi(h)
	if err != nil || n < 0 || n > ticketapi.EventIDTerminal {
		a.reject(w, "invalid", http.StatusBadRequest, ErrorBody{Error: fmt.Sprintf("%s must be an event id this endpoint sent (%d, %d or %d)", ticketapi.HeaderLastEventID, ticketapi.EventIDQueued, ticketapi.EventIDMatched, ticketapi.EventIDTerminal), Fields: []events.FieldError{{Field: ticketapi.HeaderLastEventID, Reason: "not an event id"}}})
		return 0, false
	}
	return n, true
}

// follow starts following a ticket for a caller that owns it. A ticket
// created here was tracked since before its publish, so the tracker has
// every result of it and nothing needs reading from JetStream; any other
// is read from JetStream (followStored). ok is false if it answered with
// an error; stop ends the following.
func (a *API) follow(w http.ResponseWriter, r *http.Request, caller identity.Caller, id string) (rec tickets.Record, view tickets.View, updates <-chan events.Result, stop func(), ok bool) {
	wt, err := a.results.Wait(r.Context(), id, tickets.Follower(caller))
	if err == nil && wt.Creation != nil && tickets.Owns(caller, wt.Creation.Players) {
		rec, _ = trackedRecord(id, wt)
		view, updates = latest(rec, tickets.ViewOf(rec, nil), wt.Results)
		return rec, view, updates, wt.Stop, true
	}
	if err == nil {
		wt.Stop()
	}
	return a.followStored(w, r, caller, id)
}

// latest is a wait's first view: the last result it was handed at once,
// if any, else view; updates is nil once that is an outcome (one that
// came before the stream or socket: Tracker.Wait hands it and ends),
// else the wait's to follow.
func latest(rec tickets.Record, view tickets.View, results <-chan events.Result) (first tickets.View, updates <-chan events.Result) {
	select {
	case res, open := <-results:
		if !open {
			return view, results // let go meanwhile: its follower reads the stored state
		}
		if res.Status.Terminal() {
			return tickets.ViewOf(rec, &res), nil
		}
		return tickets.ViewOf(rec, &res), results
	default:
		return view, results
	}
}

// trackedRecord is a ticket's record as its creation tells it, without a
// read of the stored one: its id, mode, shard and players, what its
// views are made of (ViewOf) and its outcome is read by
// (tickets.Service.View); ok is false for a ticket not tracked since
// before it was published.
func trackedRecord(id string, wt results.Waiting) (rec tickets.Record, ok bool) {
	c := wt.Creation
	if c == nil {
		return rec, false
	}
	t := events.Ticket{TicketID: id, Mode: c.Mode}
	if len(c.Players) == 1 {
		t.PlayerID = c.Players[0]
	} else {
		t.Party = c.Players
	}
	return tickets.Record{Ticket: t, Shard: c.Shard}, true
}

// streamEvents sends a ticket's updates until its terminal status, the
// client leaving or the frontend shutting down, with a comment line every
// heartbeat to keep idle proxies from closing the stream.
func (a *API) streamEvents(ctx context.Context, sw *sseWriter, caller identity.Caller, rec tickets.Record, updates <-chan events.Result) {
	ping := time.NewTicker(a.cfg.Heartbeat)
	defer ping.Stop()
	refresh, stopRefresh := a.refreshTicks()
	defer stopRefresh()
	for {
		select {
		case res, ok := <-updates:
			if !ok {
				// Let go of without a terminal result (Untrack, or the
				// tracker's Run ended): the stream has the truth.
				if v, err := a.tickets.Get(ctx, caller, rec.Ticket.TicketID); err == nil {
					sw.send(v)
				}
				return
			}
			if sw.send(tickets.ViewOf(rec, &res)) {
				return
			}
		case <-refresh:
			if sw.refresh() {
				return
			}
		case <-ping.C:
			sw.arm()
			if _, err := fmt.Fprint(sw.w, ": ping\n\n"); err != nil {
				return
			}
			sw.flusher.Flush()
		case <-ctx.Done():
			return
		case <-a.done:
			return
		}
	}
}

// sseWriter writes a ticket's status events: each status rank once, and
// only ranks past the last one the client has (its Last-Event-ID); and
// the queued event again when its expected wait moves.
type sseWriter struct {
	ctx     context.Context // the request's: the parent of deliver spans
	w       http.ResponseWriter
	flusher http.Flusher
	last    int
	// ref adds a queued ticket's expected wait (API.withWait) and keeps
	// the figure the client has.
	ref *refresher
	// rc re-arms the write deadline, timeout from now, before each write
	// (Config.WriteTimeout): a client that stops reading is cut off.
	rc      *http.ResponseController
	timeout time.Duration
}

// arm gives the next write its deadline.
func (s *sseWriter) arm() { _ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout)) }

// send writes v unless the client has it already; done is true once v is
// terminal or the client is gone.
func (s *sseWriter) send(v tickets.View) (done bool) {
	rank := v.Status.Rank()
	if rank < s.last {
		return v.Status.Terminal()
	}
	v = s.ref.a.withWait(v)
	if rank > s.last {
		span := deliver(s.ctx, v)
		err := s.write(rank, v)
		tracing.End(span, err)
		if err != nil {
			return true
		}
		s.last = rank
	}
	// Sent now, or had before a reconnection: either way the figure of
	// now is the one refreshes are measured from.
	s.ref.saw(v)
	return v.Status.Terminal()
}

// refresh writes the queued event again, id 1, when the client's latest
// status is queued and its expected wait moved; done is true once the
// client is gone.
func (s *sseWriter) refresh() (done bool) {
	if s.last != events.StatusQueued.Rank() {
		return false
	}
	v, ok := s.ref.due()
	return ok && s.write(s.last, v) != nil
}

// write writes v's event, flushed unless v is terminal: the handler
// returns after a terminal event, and the response's end carries it
// (over HTTP/2 one DATA frame with END_STREAM, where a flush first made
// two, each a write system call at both ends). So a terminal event's
// deliver span ends when it is written, before it is sent.
func (s *sseWriter) write(id int, v tickets.View) error {
	data, _ := json.Marshal(v) // a View always encodes
	s.arm()
	if _, err := fmt.Fprintf(s.w, "id: %d\nevent: %s\ndata: %s\n\n", id, ticketapi.EventStatus, data); err != nil {
		return err
	}
	if !v.Status.Terminal() {
		s.flusher.Flush()
	}
	return nil
}

// followStored reads a ticket's state from JetStream and follows its
// results from now on: for a ticket created by another frontend, or one
// this frontend no longer tracks. ok is false if it answered with an error.
func (a *API) followStored(w http.ResponseWriter, r *http.Request, caller identity.Caller, id string) (rec tickets.Record, view tickets.View, updates <-chan events.Result, stop func(), ok bool) {
	ctx := r.Context()
	stop = func() {}
	rec, err := a.tickets.RecordFor(ctx, caller, id)
	if err != nil {
		a.writeError(w, err)
		return rec, view, nil, stop, false
	}
	view, err = a.tickets.View(ctx, rec, tickets.Follower(caller))
	if err != nil {
		a.writeError(w, err)
		return rec, view, nil, stop, false
	}
	if view.Status.Terminal() {
		return rec, view, nil, stop, true
	}
	// Follow the player's results first, then read the state again, so
	// that a change between the two reads is not missed.
	wt, err := a.results.Follow(ctx, &rec.Ticket, tickets.Follower(caller))
	switch {
	case errors.Is(err, results.ErrNotTracked): // it just ended
	case err != nil:
		a.writeError(w, err)
		return rec, view, nil, stop, false
	default:
		stop, updates = wt.Stop, wt.Results
	}
	if view, err = a.tickets.View(ctx, rec, tickets.Follower(caller)); err != nil {
		stop()
		a.writeError(w, err)
		return rec, view, nil, func() {}, false
	}
	return rec, view, updates, stop, true
}
