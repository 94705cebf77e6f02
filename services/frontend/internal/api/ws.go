package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

// Close codes a waiting WebSocket client may see instead of an assignment.
const (
	CloseExpired   = 4001
	CloseFailed    = 4002
	CloseCancelled = 4003
	CloseInvalid   = 4400
)

// demoWebSocket is compatible with the original demo's clients: connecting
// queues a ticket (query parameters region, mode, skill, player_id are
// optional) and the server sends exactly one text message, the game
// server's URL, then closes. A ticket that ends otherwise closes the
// connection with a code and a reason; a client that goes away before its
// assignment has its ticket cancelled.
func (a *API) demoWebSocket(w http.ResponseWriter, r *http.Request, caller identity.Caller) {
	a.serveWebSocket(w, r, caller, "ws", func(c *websocket.Conn, v tickets.View) error {
		if v.Status != events.StatusAssigned {
			return nil
		}
		return c.WriteMessage(websocket.TextMessage, []byte(v.Assignment.URL))
	})
}

// eventsWebSocket is /ws for richer clients: every status change arrives as
// a JSON text message (the ticket view), the last one terminal; while
// queued, the queued message comes again when its expected wait moves
// (refresher). A client may send {"type":"cancel"} to cancel its ticket.
func (a *API) eventsWebSocket(w http.ResponseWriter, r *http.Request, caller identity.Caller) {
	a.serveWebSocket(w, r, caller, "ws_events", func(c *websocket.Conn, v tickets.View) error {
		data, _ := json.Marshal(v) // a View always encodes
		return c.WriteMessage(websocket.TextMessage, data)
	})
}

// emitFunc sends a ticket view, its expected wait added already
// (API.withWait), to a WebSocket client in the endpoint's own form.
type emitFunc func(*websocket.Conn, tickets.View) error

// serveWebSocket queues the ticket a WebSocket client asks for (refusals
// before the upgrade are plain HTTP answers) and follows it for the
// client until it ends.
func (a *API) serveWebSocket(w http.ResponseWriter, r *http.Request, caller identity.Caller, kind string, emit emitFunc) {
	req, err := a.wsRequest(r, caller)
	if err != nil {
		a.writeError(w, err)
		return
	}
	release, ok := a.holdStream(w, r, caller)
	if !ok {
		return
	}
	defer release()
	conn, err := a.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has answered the client with the reason already.
		a.met.rejections.WithLabelValues("bad_websocket").Inc()
		return
	}
	defer conn.Close()
	a.met.open.WithLabelValues(kind).Inc()
	defer a.met.open.WithLabelValues(kind).Dec()

	ctx, _ := requestMeta(r)
	view, err := a.tickets.Create(ctx, caller, req, "")
	if err != nil {
		a.met.rejections.WithLabelValues(outcome(err)).Inc()
		code := websocket.CloseTryAgainLater
		if errors.Is(err, events.ErrInvalid) {
			code = CloseInvalid
		}
		closeWith(conn, code, err.Error())
		return
	}
	a.met.requests.WithLabelValues("queued").Inc()
	waiting, err := a.results.Wait(ctx, view.TicketID)
	if err != nil {
		// Already ended (an instant outcome): report what the stream says.
		if v, gerr := a.tickets.Get(ctx, caller, view.TicketID); gerr == nil {
			a.finish(conn, v, emit)
		}
		return
	}
	defer waiting.Stop()
	ref := &refresher{a: a}
	view = a.withWait(view)
	if err := emit(conn, view); err != nil {
		a.abandon(view.TicketID, "client connection failed")
		return
	}
	ref.saw(view)
	a.followWebSocket(ctx, conn, caller, ref, waiting.Results, emit)
}

// followWebSocket sends a queued ticket's updates to its client until the
// ticket ends, the client cancels or leaves (its ticket is then
// cancelled) or the frontend shuts down; and its view again when its
// expected wait moves while it is queued (ref holds what the client has).
func (a *API) followWebSocket(ctx context.Context, conn *websocket.Conn, caller identity.Caller, ref *refresher, updates <-chan events.Result, emit emitFunc) {
	ticketID := ref.view.TicketID
	gone, cancelAsked := readClient(conn)
	ping := time.NewTicker(a.cfg.Heartbeat)
	defer ping.Stop()
	refresh, stopRefresh := a.refreshTicks()
	defer stopRefresh()
	rec, err := a.tickets.RecordFor(ctx, caller, ticketID)
	if err != nil {
		a.abandon(ticketID, "ticket record unreadable")
		closeWith(conn, websocket.CloseInternalServerErr, "ticket record unreadable")
		return
	}
	for {
		select {
		case res, ok := <-updates:
			if !ok {
				if v, err := a.tickets.View(ctx, rec); err == nil && v.Status.Terminal() {
					a.finish(conn, v, emit)
				} else {
					closeWith(conn, websocket.CloseTryAgainLater, "lost track of the ticket; poll GET /v1/tickets/"+ticketID)
				}
				return
			}
			v := tickets.ViewOf(rec, &res)
			if v.Status.Terminal() {
				a.finish(conn, v, emit)
				return
			}
			v = a.withWait(v)
			if err := emit(conn, v); err != nil {
				a.abandon(ticketID, "client connection failed")
				return
			}
			ref.saw(v)
		case <-refresh:
			if v, ok := ref.due(); ok && emit(conn, v) != nil {
				a.abandon(ticketID, "client connection failed")
				return
			}
		case <-cancelAsked:
			if v, err := a.tickets.Cancel(context.WithoutCancel(ctx), caller, ticketID, "cancelled by the client"); err == nil {
				a.finish(conn, v, emit)
				return
			}
		case <-gone:
			a.abandon(ticketID, "client disconnected before its assignment")
			return
		case <-a.done:
			a.abandon(ticketID, "frontend shutting down")
			closeWith(conn, websocket.CloseGoingAway, "frontend shutting down; ticket cancelled")
			return
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second)); err != nil {
				a.abandon(ticketID, "client stopped answering")
				return
			}
		}
	}
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
			var m struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(data, &m) == nil && m.Type == "cancel" {
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
// with a code naming the outcome otherwise.
func (a *API) finish(conn *websocket.Conn, v tickets.View, emit emitFunc) {
	if err := emit(conn, a.withWait(v)); err != nil {
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

// wsRequest reads a ticket request from /ws query parameters. A player
// caller queues for themself: a player_id parameter, if given, must be
// theirs (checked here, before the upgrade, so the refusal is a plain 403).
func (a *API) wsRequest(r *http.Request, caller identity.Caller) (tickets.Request, error) {
	q := r.URL.Query()
	req := tickets.Request{PlayerID: q.Get("player_id"), Region: q.Get("region"), Mode: q.Get("mode")}
	switch {
	case !caller.Server:
		if err := tickets.Authorize(caller, &req); err != nil {
			return req, err
		}
	case req.PlayerID == "":
		var b [8]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		req.PlayerID = "ws-" + hex.EncodeToString(b[:])
	}
	if req.Region == "" {
		req.Region = a.cfg.WSRegion
	}
	skill := a.cfg.WSSkill
	if s := q.Get("skill"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return req, &events.ValidationError{Kind: "request", Fields: []events.FieldError{{Field: "skill", Reason: "must be an integer"}}}
		}
		skill = n
	}
	req.Skill = &skill
	// Attributes are the JSON object a POST carries: a game whose rule
	// set requires one can use /ws too. Malformed, it is refused here;
	// what the rule set refuses, Create refuses.
	if s := q.Get("attributes"); s != "" {
		var attrs events.Attributes
		if err := events.DecodeStrict("request", []byte(s), &attrs); err != nil {
			return req, underField("attributes", err)
		}
		req.Attributes = &attrs
	}
	return req, nil
}

// underField names the fields of a validation error of a value that is
// field's, as a POST's body would have named them.
func underField(field string, err error) error {
	var ve *events.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	out := &events.ValidationError{Kind: ve.Kind, Fields: make([]events.FieldError, len(ve.Fields))}
	for i, f := range ve.Fields {
		if f.Field != "" {
			f.Field = field + "." + f.Field
		} else {
			f.Field = field
		}
		out.Fields[i] = f
	}
	return out
}

func closeWith(conn *websocket.Conn, code int, reason string) {
	if len(reason) > 120 { // a close frame carries at most 123 bytes of reason
		reason = reason[:120]
	}
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(5*time.Second))
}
