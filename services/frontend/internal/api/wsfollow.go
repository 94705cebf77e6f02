package api

import (
	"context"
	"errors"
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
// client has), and after a heartbeat in which it was sent nothing.
func (a *API) followWebSocket(ctx context.Context, conn *websocket.Conn, caller identity.Caller, rec tickets.Record, ref *refresher, updates <-chan events.Result, ep endpoint) {
	ticketID := rec.Ticket.TicketID
	emit := ep.emit
	gone, cancelAsked := readClient(conn)
	ping := time.NewTicker(a.cfg.Heartbeat)
	defer ping.Stop()
	refresh, stopRefresh := a.refreshTicks()
	defer stopRefresh()
	var pace cancels
	sent := false // since the last heartbeat
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
				a.abandon(ticketID, "client connection failed")
				return
			}
			ref.saw(v)
			sent = true
		case <-refresh:
			if v, ok := ref.due(); ok {
				if emit(conn, v) != nil {
					a.abandon(ticketID, "client connection failed")
					return
				}
				sent = true
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
			a.abandon(ticketID, "client disconnected before its assignment")
			return
		case <-a.done:
			if ep.handsOver {
				closeWith(conn, websocket.CloseServiceRestart, ticketapi.RestartReason(ticketID))
				return
			}
			a.abandon(ticketID, "frontend shutting down")
			closeWith(conn, websocket.CloseGoingAway, "frontend shutting down; ticket cancelled")
			return
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second)); err != nil {
				a.abandon(ticketID, "client stopped answering")
				return
			}
			// A browser's page hears no ping: the view again tells it the
			// connection lives (the demo's emit sends nothing but the URL).
			if !sent && emit(conn, ref.again()) != nil {
				a.abandon(ticketID, "client stopped answering")
				return
			}
			sent = false
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
// connection has one reader): gone is closed when the client goes away,
// and cancelAsked receives when it sends {"type":"cancel"}.
func readClient(conn *websocket.Conn) (gone <-chan struct{}, cancelAsked <-chan struct{}) {
	goneCh := make(chan struct{})
	cancelCh := make(chan struct{}, 1)
	go func() {
		defer close(goneCh)
		conn.SetReadLimit(512)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
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
	return goneCh, cancelCh
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

// abandon cancels the ticket of a client that is gone.
func (a *API) abandon(ticketID, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.tickets.Cancel(ctx, tickets.System, ticketID, reason); err != nil && !errors.Is(err, tickets.ErrAlreadyDecided) {
		a.log.Warn("cancel abandoned ticket", "ticket_id", ticketID, "err", err)
	}
}
