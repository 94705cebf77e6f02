package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// ErrConnectionLost: a WebSocket ended before the frontend said which
// ticket it queued. It is not opened again, which would queue a second
// ticket.
var ErrConnectionLost = errors.New("websocket closed before the ticket's outcome")

// Queue queues a ticket and follows it on one WebSocket (/ws/events),
// returning its terminal view; fn, if not nil, is called with every
// status, the terminal one included. The request travels as query
// parameters (ticketapi.Request.WSQuery), which carry region, mode,
// skill, player_id and attributes only (a party, latencies or a ticket id
// need Create). To cancel, end ctx or call Cancel with the ticket id fn
// was given: ending ctx once the ticket is queued cancels it (a close
// frame, and a DELETE within 5 s), unless it was matched meanwhile. The
// frontend keeps the ticket of a connection cut, or closed by a frontend
// that shuts down (1012); so a connection lost once the ticket is queued
// is not opened again (that would queue a second ticket): the
// ticket's event stream (Follow) says how it ended; a cut ticket (or one
// let go with 1012) no one follows 60-90 s later (the frontend's
// -lost-grace, above IdleTimeout),
// or later once no one follows it, is cancelled (reason
// ticketapi.LostReason), so a client that cannot reach a frontend for
// longer finds it so. A status sent again
// (the frontend's heartbeat) is given to fn once. A refusal is an
// *Error: before
// the upgrade as for Create, after it (a drain, a full region: close
// 1013) with status 503 and the Retry-After its close reason names;
// 4400 (invalid) with status 400.
func (c *Client) Queue(ctx context.Context, req ticketapi.Request, fn func(ticketapi.View)) (ticketapi.View, error) {
	u, err := c.wsURL(req)
	if err != nil {
		return ticketapi.View{}, err
	}
	conn, err := c.dial(ctx, u)
	if err != nil {
		return ticketapi.View{}, fmt.Errorf("quickmatch queue: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() {
		// A close frame says the client leaves (its ticket cancelled); a
		// connection cut without one keeps the ticket, for its client to
		// follow elsewhere. Then unblock the read.
		closeFrame(conn, websocket.CloseNormalClosure, "client left")
		conn.Close()
	})
	defer stop()
	conn.SetReadLimit(int64(c.cfg.MaxEventBytes))
	// The frontend pings every 15 s; silence past IdleTimeout is a dead
	// connection.
	_ = conn.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
	conn.SetPingHandler(func(data string) error {
		_ = conn.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
	})
	var last ticketapi.View
	var lastData []byte // the frontend's heartbeat sends it again
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				c.leave(ctx, last.TicketID)
				return ticketapi.View{}, fmt.Errorf("quickmatch queue: %w", ctx.Err())
			}
			err = closeError(err)
			if last.TicketID != "" && !errors.Is(err, ErrTooLarge) {
				// Queued, then cut off, let go by a frontend that shuts
				// down (1012) or told to poll (1013): the ticket's event
				// stream tells how it ends (connecting again would queue a
				// second ticket).
				v, err := c.follow(ctx, last.TicketID, last.Status.Rank(), fn)
				if err != nil && ctx.Err() != nil {
					c.leave(ctx, last.TicketID)
				}
				return v, err
			}
			return ticketapi.View{}, fmt.Errorf("quickmatch queue: %w", err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
		if bytes.Equal(data, lastData) {
			continue
		}
		lastData = data
		var v ticketapi.View
		if err := json.Unmarshal(data, &v); err != nil {
			closeFrame(conn, websocket.CloseProtocolError, contractBroken)
			return ticketapi.View{}, fmt.Errorf("quickmatch queue: a status message: %w", ErrMalformed)
		}
		// Every message is of the ticket the first one named.
		if err := checkView(&v, last.TicketID); err != nil {
			closeFrame(conn, websocket.CloseProtocolError, contractBroken)
			return ticketapi.View{}, fmt.Errorf("quickmatch queue: %w", err)
		}
		if fn != nil {
			fn(v)
		}
		if v.Status.Terminal() {
			return v, nil
		}
		last = v
	}
}

// closeFrame sends a close frame: the frontend cancels the ticket of a
// client that closes, and keeps that of a connection cut without one,
// which no one could then name or cancel when the client gives its
// ticket up (its caller left; contractBroken, 1002).
func closeFrame(conn *websocket.Conn, code int, reason string) {
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
}

// contractBroken is the reason of the close of a message that breaks the
// contract.
const contractBroken = "a message that breaks the contract"

// leave cancels the ticket Queue queued ("": none yet) for a caller that
// ended ctx, within 5 s: the close frame that says so reaches no frontend
// once the socket is lost or let go, and the frontend keeps the ticket
// of a socket cut. Too late (matched) changes nothing.
func (c *Client) leave(ctx context.Context, ticketID string) {
	if ticketID == "" {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = c.Cancel(cctx, ticketID)
}

// wsURL is /ws/events with req as its query.
func (c *Client) wsURL(req ticketapi.Request) (string, error) {
	q, err := req.WSQuery()
	switch {
	case errors.Is(err, ticketapi.ErrNotInQuery):
		return "", fmt.Errorf("quickmatch queue: %w: %w", ErrInvalid, err)
	case err != nil:
		return "", fmt.Errorf("quickmatch queue: %w", err)
	}
	return "ws" + strings.TrimPrefix(c.base, "http") + ticketapi.PathWSEvents + "?" + q.Encode(), nil
}

// dial opens the WebSocket with the caller's token; a 401 asks the token
// source once more, as for HTTP requests.
func (c *Client) dial(ctx context.Context, u string) (*websocket.Conn, error) {
	d := c.cfg.Dialer
	if d == nil {
		d = &websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: 30 * time.Second}
	}
	tok, err := c.token(ctx, "")
	for retried := false; err == nil; retried = true {
		h := http.Header{}
		if tok != "" {
			h.Set(ticketapi.HeaderAuthorization, "Bearer "+tok)
		}
		conn, res, derr := d.DialContext(ctx, u, h)
		if derr == nil {
			return conn, nil
		}
		if res == nil {
			return nil, derr
		}
		refused := readError(res, int64(c.cfg.MaxEventBytes))
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized || retried || c.cfg.Token == nil {
			return nil, refused
		}
		var fresh string
		if fresh, err = c.token(ctx, tok); err == nil && fresh == tok {
			return nil, refused
		}
		tok = fresh
	}
	return nil, err
}

// closeError is what a connection's end means: a refusal after the
// upgrade as an *Error, a message over the bound as ErrTooLarge, else
// ErrConnectionLost.
func closeError(err error) error {
	if errors.Is(err, websocket.ErrReadLimit) {
		return fmt.Errorf("a message over the bound: %w", ErrTooLarge)
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return fmt.Errorf("%w: %w", ErrConnectionLost, err)
	}
	switch ce.Code {
	case ticketapi.CloseInvalid:
		return &Error{Status: http.StatusBadRequest, Body: ticketapi.ErrorBody{Error: ce.Text}}
	case websocket.CloseTryAgainLater:
		e := &Error{Status: http.StatusServiceUnavailable, Body: ticketapi.ErrorBody{Error: ce.Text}}
		// "retry after 30s: shard eu.gold is drained: <reason>"
		if d, text, ok := ticketapi.ParseRetryAfterCloseReason(ce.Text); ok {
			e.RetryAfter, e.Body.Error = d, text
		}
		if d, ok := ticketapi.ParseDrainedReason(e.Body.Error); ok {
			e.Body.Drained = &d
		}
		e.Body.SuggestRegion = ticketapi.ParseSuggestedRegion(e.Body.Error)
		return e
	}
	return fmt.Errorf("%w: %w", ErrConnectionLost, err)
}
