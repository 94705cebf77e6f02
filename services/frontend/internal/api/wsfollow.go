package api

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

// followWebSocket sends a queued ticket's updates to its client until the
// ticket ends, the client cancels or leaves (its ticket is then
// cancelled) or the frontend shuts down (ep.handsOver); its view again
// when its expected wait moves while it is queued (ref holds what the
// client has), and a ping and its last message again after a heartbeat
// in which it was sent nothing (a page hears no ping).
func (a *API) followWebSocket(ctx context.Context, conn *websocket.Conn, caller identity.Caller, rec tickets.Record, ref *refresher, updates <-chan events.Result, ep endpoint) {
	ticketID := rec.Ticket.TicketID
	emit := ep.emit
	gone, cancelAsked, end := readClient(conn)
	quiet := time.NewTimer(a.cfg.Heartbeat) // reset by every message sent
	defer quiet.Stop()
	refresh, stopRefresh := a.refreshTicks()
	defer stopRefresh()
	var pace cancels
	for {
		select {
		case res, ok := <-updates:
			if !ok {
				// Let go of without a terminal result (Untrack, or the
				// tracker's Run ended): the stream has the truth.
				if v, err := a.tickets.Get(ctx, caller, ticketID); err == nil && v.Status.Terminal() {
					a.finish(ctx, conn, v, emit)
				} else {
					closeWith(conn, websocket.CloseTryAgainLater, "lost track of the ticket; poll GET "+ticketapi.TicketPath(ticketID))
				}
				return
			}
			v := tickets.ViewOf(rec, &res)
			if v.Status.Terminal() {
				a.finish(ctx, conn, v, emit)
				return
			}
			v = a.withWait(v)
			if err := emit(conn, v); err != nil {
				a.lost(ep, ticketID, "client connection failed")
				return
			}
			ref.saw(v)
			quiet.Reset(a.cfg.Heartbeat)
		case <-refresh:
			if v, ok := ref.due(); ok {
				if emit(conn, v) != nil {
					a.lost(ep, ticketID, "client connection failed")
					return
				}
				quiet.Reset(a.cfg.Heartbeat)
			}
		case <-cancelAsked:
			if pace.due(a.now()) && a.cancelled(ctx, conn, caller, ticketID, emit) {
				return
			}
		case <-pace.later:
			pace.later = nil
			if pace.due(a.now()) && a.cancelled(ctx, conn, caller, ticketID, emit) {
				return
			}
		case <-gone:
			if end.left {
				a.abandon(ticketID, "client disconnected before its assignment")
			} else {
				a.lost(ep, ticketID, "client connection lost")
			}
			return
		case <-a.done:
			a.letGo(ctx, conn, caller, ticketID, ep)
			return
		case <-quiet.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second)); err != nil {
				a.lost(ep, ticketID, "client stopped answering")
				return
			}
			// The demo's emit sends nothing but the URL.
			if emit(conn, ref.again()) != nil {
				a.lost(ep, ticketID, "client stopped answering")
				return
			}
			quiet.Reset(a.cfg.Heartbeat)
		}
	}
}

// cancels paces a WebSocket client's cancels, one a second at most: a
// cancel that cannot end the ticket (matched, not yet assigned) leaves the
// loop, and a client asking again at once cost 4-6 JetStream requests a
// time, at no limit (a DELETE is under the request limit). One asked
// within the second is tried once it is over, not dropped: the match may
// fail and the ticket wait again meanwhile.
type cancels struct {
	last  time.Time
	later <-chan time.Time // armed for a cancel asked too soon
}

// due reports whether a cancel asked at now may be tried now; if not, it
// arms later for when it may.
func (c *cancels) due(now time.Time) bool {
	if wait := c.last.Add(time.Second).Sub(now); wait > 0 {
		if c.later == nil {
			c.later = time.After(wait)
		}
		return false
	}
	c.last, c.later = now, nil
	return true
}

// cancelled cancels the ticket for its client and, if that ended it, sends
// the client the end.
func (a *API) cancelled(ctx context.Context, conn *websocket.Conn, caller identity.Caller, ticketID string, emit emitFunc) bool {
	v, err := a.tickets.Cancel(context.WithoutCancel(ctx), caller, ticketID, "cancelled by the client")
	if err != nil {
		return false
	}
	a.finish(ctx, conn, v, emit)
	return true
}

// readClient reads what a WebSocket client sends, in its own goroutine (a
// connection has one reader): cancelAsked receives when it sends
// {"type":"cancel"}, and gone is closed when the client goes away, end
// then saying how.
func readClient(conn *websocket.Conn) (gone <-chan struct{}, cancelAsked <-chan struct{}, end *clientEnd) {
	goneCh := make(chan struct{})
	cancelCh := make(chan struct{}, 1)
	end = &clientEnd{}
	go func() {
		defer close(goneCh)
		conn.SetReadLimit(512)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				// A cut reads as 1006 (abnormal closure), never sent; a
				// client that sent more than it may broke the contract, and
				// leaves as one that closes does.
				var ce *websocket.CloseError
				end.left = errors.Is(err, websocket.ErrReadLimit) ||
					errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure && ce.Code != ticketapi.CloseFollowing
				return
			}
			if ticketapi.IsCancel(data) {
				select {
				case cancelCh <- struct{}{}:
				default:
				}
			}
		}
	}()
	return goneCh, cancelCh, end
}

// clientEnd is how a WebSocket client went away, read once gone is
// closed: left if it closed the connection (a page unloaded, a client
// that gave up), not if the connection was cut or it closed with
// ticketapi.CloseFollowing (it follows the ticket elsewhere).
type clientEnd struct {
	left bool
}

// finish sends the terminal state and closes: normally after an assignment,
// with a code naming the outcome otherwise. The send is a "deliver" span
// (see deliver), ctx's the ticket's create span.
func (a *API) finish(ctx context.Context, conn *websocket.Conn, v tickets.View, emit emitFunc) {
	span := deliver(ctx, v)
	err := emit(conn, a.withWait(v))
	tracing.End(span, err)
	if err != nil {
		return
	}
	code := websocket.CloseNormalClosure
	switch v.Status {
	case events.StatusExpired:
		code = CloseExpired
	case events.StatusFailed:
		code = CloseFailed
	case events.StatusCancelled:
		code = CloseCancelled
	}
	closeWith(conn, code, string(v.Status)+" "+v.Reason)
}

// letGo lets a client go as its frontend shuts down: a /ws/events
// client with 1012, to follow its ticket on another frontend (its ticket,
// noted while its socket is served, is handed over to be asked about
// there: its client may not come back, handover.go); the demo's as
// shutDown does.
func (a *API) letGo(ctx context.Context, conn *websocket.Conn, caller identity.Caller, ticketID string, ep endpoint) {
	if !ep.handsOver {
		a.shutDown(ctx, conn, caller, ticketID, ep.emit)
		return
	}
	closeWith(conn, websocket.CloseServiceRestart, ticketapi.RestartReason(ticketID))
}

// shutDown lets the demo's client go as its frontend shuts down: its
// ticket cancelled, or, if it was decided meanwhile (assigned the moment
// the shutdown came), its end sent.
func (a *API) shutDown(ctx context.Context, conn *websocket.Conn, caller identity.Caller, ticketID string, emit emitFunc) {
	switch err := a.abandon(ticketID, "frontend shutting down"); {
	case err == nil:
		closeWith(conn, websocket.CloseGoingAway, "frontend shutting down; ticket cancelled")
		return
	case errors.Is(err, tickets.ErrAlreadyDecided):
		if v, gerr := a.tickets.Get(context.WithoutCancel(ctx), caller, ticketID); gerr == nil && v.Status.Terminal() {
			a.finish(ctx, conn, v, emit)
			return
		}
	}
	closeWith(conn, websocket.CloseGoingAway, "frontend shutting down")
}

// lost ends the following of a ticket whose client's connection was cut
// (or stopped taking what is sent): a /ws/events client, which has been
// told the ticket's id, follows it on its event stream (both clients
// do), so its ticket is kept for it, Config.LostGrace (a phone that
// changed networks), then cancelled unless someone follows it
// (askWhoFollows); the demo's is cancelled at once (abandon), its client
// knowing no id.
func (a *API) lost(ep endpoint, ticketID, reason string) {
	if !ep.handsOver {
		a.abandon(ticketID, reason)
		return
	}
	a.log.Debug("websocket lost; ticket kept for its client to follow", "ticket_id", ticketID, "reason", reason)
	if a.cfg.LostGrace > 0 {
		a.willAsk(ticketID)
		time.AfterFunc(a.lostGrace(), func() { a.askWhoFollows(ticketID, asked{}) })
	}
}

// lostGrace is Config.LostGrace and up to half again: the clients a
// network blip cut off at once are asked about over a spell, not in one
// burst of questions that every frontend answers.
func (a *API) lostGrace() time.Duration {
	return a.cfg.LostGrace + rand.N(a.cfg.LostGrace/2+1)
}

// lostAsks is how many questions in a row may go incomplete before a
// lost client's ticket is no longer asked about: it is then kept, as
// before the question, until its mode's max_wait.
const lostAsks = 3

// asked is what the questions about a lost client's ticket said so far.
type asked struct {
	// incomplete counts the incomplete questions in a row.
	incomplete int
	// followed: one said a client followed it; no, that the last said
	// none does (after one that said followed, two in a row cancel it:
	// its client may have been between two event streams, or on a
	// frontend that shut down, at the one).
	followed, no bool
	// handedOver: a stopping frontend handed it over (takeOver). Its
	// earlier answers are not known, so it starts as followed (two
	// "no"s cancel it: a rolling deploy moves followers between
	// frontends), and a "followed" ends the questions: its player is
	// back on an event stream, as a POST's is, whom no one asks about
	// (every ticket a rolling deploy closed with 1012 would otherwise
	// be asked about each grace until decided).
	handedOver bool
}

// askWhoFollows asks every frontend whether a client follows the ticket
// of a lost /ws/events client, and cancels it when every one answered
// that none does: the player went away (a page closed, a phone off), and
// would otherwise be matched until its mode's max_wait, its partner sent
// to a game it never joins. A ticket someone follows is asked about
// again a grace later, until it is decided (its follower may leave in
// turn); one a frontend did not answer for (cut off from NATS: its client
// may follow it there) is asked about again, lostAsks times in a row at
// most. A frontend that shuts down asks no more: it hands the ticket
// over to another, which asks in its stead (handover.go).
func (a *API) askWhoFollows(ticketID string, was asked) {
	select {
	case <-a.done:
		return // still noted: handed over
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if v, err := a.tickets.Get(ctx, tickets.System, ticketID); err == nil && v.Status.Terminal() {
		a.doneAsking(ticketID)
		return
	}
	again := func(now asked) {
		time.AfterFunc(a.lostGrace(), func() { a.askWhoFollows(ticketID, now) })
	}
	followed, complete, err := a.results.AskFollowed(ctx, ticketID)
	switch {
	case followed && was.handedOver:
		a.doneAsking(ticketID)
	case followed:
		again(asked{followed: true})
	case !complete && was.incomplete+1 < lostAsks:
		was.incomplete++
		again(was)
	case !complete:
		a.doneAsking(ticketID)
		a.log.Warn("not every frontend answered whether a lost client's ticket is followed; kept until its mode's max_wait", "ticket_id", ticketID, "err", err)
	case was.followed && !was.no:
		again(asked{followed: true, no: true, handedOver: was.handedOver})
	default:
		a.doneAsking(ticketID)
		_ = a.abandon(ticketID, ticketapi.LostCancelReason(a.cfg.LostGrace))
	}
}

// abandon cancels the ticket of a client that is gone.
// It says why it could not: ErrAlreadyDecided (too late, not logged),
// or a failure (logged).
func (a *API) abandon(ticketID, reason string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := a.tickets.Cancel(ctx, tickets.System, ticketID, reason)
	if err != nil && !errors.Is(err, tickets.ErrAlreadyDecided) {
		a.log.Warn("cancel abandoned ticket", "ticket_id", ticketID, "err", err)
	}
	return err
}
