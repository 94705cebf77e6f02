package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/tickets"
)

// Close codes a waiting WebSocket client may see instead of an
// assignment: the contract's (pkg/ticketapi).
const (
	CloseExpired   = ticketapi.CloseExpired
	CloseFailed    = ticketapi.CloseFailed
	CloseCancelled = ticketapi.CloseCancelled
	CloseInvalid   = ticketapi.CloseInvalid
)

// demoWebSocket is compatible with the original demo's clients: connecting
// queues a ticket (query parameters region, mode, skill, player_id are
// optional) and the server sends exactly one text message, the game
// server's URL, then closes. A ticket that ends otherwise closes the
// connection with a code and a reason; a client that goes away before its
// assignment has its ticket cancelled.
func (a *API) demoWebSocket(w http.ResponseWriter, r *http.Request, caller identity.Caller, sl *slot) {
	a.serveWebSocket(w, r, caller, sl, endpoint{kind: "ws", emit: func(c *websocket.Conn, v tickets.View) error {
		if v.Status != events.StatusAssigned {
			return nil
		}
		return c.WriteMessage(websocket.TextMessage, []byte(v.Assignment.URL))
	}})
}

// eventsWebSocket is /ws for richer clients: every status change arrives as
// a JSON text message (the ticket view), the last one terminal; while
// queued, the queued message comes again when its expected wait moves
// (refresher), and the latest view after a heartbeat without a message
// (a page cannot see pings). A client may send {"type":"cancel"} to
// cancel its ticket. On shutdown its ticket is kept (handsOver).
func (a *API) eventsWebSocket(w http.ResponseWriter, r *http.Request, caller identity.Caller, sl *slot) {
	a.serveWebSocket(w, r, caller, sl, endpoint{kind: "ws_events", handsOver: true, emit: func(c *websocket.Conn, v tickets.View) error {
		data, _ := json.Marshal(v) // a View always encodes
		return c.WriteMessage(websocket.TextMessage, data)
	}})
}

// endpoint is what differs between the two WebSocket paths.
type endpoint struct {
	kind string // the metrics' label
	emit emitFunc
	// handsOver: its client has been told the ticket's id, so it can
	// follow it on its event stream, on any frontend: on shutdown the
	// ticket is kept and the client told so (close 1012,
	// ticketapi.RestartReason), and a connection cut keeps it too (lost);
	// only a client that closes (leaves) has it cancelled. The demo's
	// client knows no id: its ticket is cancelled whenever its socket
	// ends, else it would be matched without its player.
	handsOver bool
}

// boundedEmit is emit with a write deadline, Config.WriteTimeout from
// each call: a client that stops reading is cut off (gorilla/websocket
// writes without one otherwise; pings and close frames carry their own).
func (a *API) boundedEmit(emit emitFunc) emitFunc {
	return func(c *websocket.Conn, v tickets.View) error {
		_ = c.SetWriteDeadline(time.Now().Add(a.cfg.WriteTimeout))
		return emit(c, v)
	}
}

// emitFunc sends a ticket view, its expected wait added already
// (API.withWait), to a WebSocket client in the endpoint's own form.
type emitFunc func(*websocket.Conn, tickets.View) error

// serveWebSocket queues the ticket a WebSocket client asks for (refusals
// before the upgrade are plain HTTP answers) and follows it for the
// client until it ends. The slot (admit) is taken before the upgrade, so
// that a refusal is a plain 503 the client's handshake reports, and
// given back once Create ends.
func (a *API) serveWebSocket(w http.ResponseWriter, r *http.Request, caller identity.Caller, sl *slot, ep endpoint) {
	ep.emit = a.boundedEmit(ep.emit)
	emit, kind := ep.emit, ep.kind
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
	ctx, _ := requestMeta(r)
	ctx, span := startCreate(ctx)
	conn, view, err := a.startWebSocket(ctx, w, r, sl, caller, req)
	endCreate(span, view, err)
	if conn == nil {
		// Upgrade has answered the client with the reason already.
		a.met.rejections.WithLabelValues("bad_websocket").Inc()
		return
	}
	defer conn.Close()
	a.met.open.WithLabelValues(kind).Inc()
	defer a.met.open.WithLabelValues(kind).Dec()
	if err != nil {
		a.met.rejections.WithLabelValues(outcome(err)).Inc()
		refuseWebSocket(conn, err)
		return
	}
	a.met.requests.WithLabelValues("queued").Inc()
	defer a.noteWhileServed(ep, view.TicketID)()
	waiting, err := a.results.Wait(ctx, view.TicketID, tickets.Follower(caller))
	if err != nil {
		// Let go already (its outcome long past): report what the stream
		// says. An outcome of moments ago is handed by the wait (latest).
		if v, gerr := a.tickets.Get(ctx, caller, view.TicketID); gerr == nil {
			a.finish(ctx, conn, v, emit)
		}
		return
	}
	defer waiting.Stop()
	rec, ok := trackedRecord(view.TicketID, waiting)
	if !ok {
		// Never for a WebSocket's ticket today (it names no id and has no
		// key, so Create tracks it from its creation); should that change,
		// its stored record is what its views are made of.
		if rec, err = a.tickets.RecordFor(ctx, caller, view.TicketID); err != nil {
			a.abandon(view.TicketID, "ticket record unreadable")
			closeWith(conn, websocket.CloseInternalServerErr, "ticket record unreadable")
			return
		}
	}
	view, updates := latest(rec, view, waiting.Results)
	if updates == nil { // its outcome came before the wait
		a.finish(ctx, conn, view, emit)
		return
	}
	ref := &refresher{a: a}
	view = a.withWait(view)
	if err := emit(conn, view); err != nil {
		a.abandon(view.TicketID, "client connection failed")
		return
	}
	ref.saw(view)
	a.followWebSocket(ctx, conn, caller, rec, ref, updates, ep)
}

// startWebSocket upgrades the connection (nil if that failed) and creates
// the ticket in sl, which it gives back on every path. The upgrade's
// 101 is written within the upgrader's HandshakeTimeout, so a client
// that never reads it holds the slot no longer than that (see admit.go:
// the slot comes before the token's verification, so before the 101).
func (a *API) startWebSocket(ctx context.Context, w http.ResponseWriter, r *http.Request, sl *slot, caller identity.Caller, req tickets.Request) (conn *websocket.Conn, view tickets.View, err error) {
	conn, err = a.upgrader.Upgrade(w, r, nil)
	if err != nil {
		sl.release(false)
		return nil, view, err
	}
	defer func() {
		// net/http recovers a handler's panic but leaves a hijacked
		// connection open: close it, so the client is not left waiting.
		if p := recover(); p != nil {
			conn.Close()
			panic(p)
		}
	}()
	view, err = a.create(ctx, sl, caller, req, "")
	return conn, view, err
}

// refuseWebSocket closes the connection of a ticket Create refused: 4400
// for an invalid request, else 1013 try again later. A WebSocket client
// cannot read the Retry-After header of a refusal after the upgrade, so
// the reason starts with it: "retry after 30s: shard eu.gold is drained:
// ...".
func refuseWebSocket(conn *websocket.Conn, err error) {
	if errors.Is(err, events.ErrInvalid) {
		closeWith(conn, CloseInvalid, err.Error())
		return
	}
	reason := err.Error()
	if outcome(err) == "unavailable" {
		reason = "ticket service unavailable" // the broker's error is the operators'
	}
	if d := retryAfter(err); d > 0 {
		reason = ticketapi.RetryAfterCloseReason(d, reason)
	}
	closeWith(conn, websocket.CloseTryAgainLater, reason)
}

// wsRequest reads a ticket request from /ws query parameters
// (ticketapi.RequestFromQuery). A player caller queues for themself: a
// player_id parameter, if given, must be theirs (checked here, before the
// upgrade, so the refusal is a plain 403).
func (a *API) wsRequest(r *http.Request, caller identity.Caller) (tickets.Request, error) {
	// A malformed skill or attributes is told after the caller's right
	// to the player (403 before 400).
	req, malformed := ticketapi.RequestFromQuery(r.URL.Query())
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
	if malformed != nil {
		return req, malformed
	}
	if req.Region == "" {
		req.Region = a.cfg.WSRegion
	}
	if req.Skill == nil {
		skill := a.cfg.WSSkill
		req.Skill = &skill
	}
	// Attributes are the JSON object a POST carries: a game whose rule
	// set requires one can use /ws too. Malformed, RequestFromQuery
	// refused them; what the rule set refuses, Create refuses.
	return req, nil
}

// maxCloseReason is the most bytes of reason a close frame carries (125
// bytes of payload less the code's 2).
const maxCloseReason = 123

// closeWith closes with code and reason, the reason cut to fit the frame
// at a character's boundary: a reason that is not valid UTF-8 makes the
// client fail the connection (RFC 6455), and it sees neither.
func closeWith(conn *websocket.Conn, code int, reason string) {
	for len(reason) > maxCloseReason {
		_, n := utf8.DecodeLastRuneInString(reason)
		reason = reason[:len(reason)-n]
	}
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(5*time.Second))
}
