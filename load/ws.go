package main

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/gorilla/websocket"

	qmclient "github.com/quickmatch-dev/quickmatch/pkg/client"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/loadrecord"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// wsDialer opens `load run -via ws`'s sockets, one per ticket, spread
// over -source-ips as hold's are (dialer).
func wsDialer(sources int) *websocket.Dialer {
	return &websocket.Dialer{
		HandshakeTimeout: 30 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer(sources).DialContext(ctx, network, addr)
		},
	}
}

// followWS queues one ticket and follows it to its outcome on one
// WebSocket (/ws/events), as a game client that keeps its socket open
// does. The first message, the ticket queued, is its acceptance, timed
// as a POST's 202; a refusal, before the upgrade (a 503) or after it (a
// close that says 503), is timed and counted as a refused POST, so that
// the run's refusal figures read the same over either path. It returns
// as follow does.
func followWS(ctx context.Context, fe frontend, toks *tokens, p int, player, region string, skill int, rec *recorder) (answered time.Time, kind string) {
	c, err := fe.as(toks, p, player)
	if err != nil {
		return answered, "token_error"
	}
	view, err := c.Queue(ctx, ticketRequest(player, region, skill), func(v ticketapi.View) {
		if answered.IsZero() {
			answered = time.Now()
			rec.add(loadrecord.Acked{TicketID: v.TicketID, PlayerID: player, Frontend: fe.base, AcceptedAt: answered, Region: region, Skill: skill})
		}
	})
	switch {
	case err != nil && answered.IsZero():
		if errors.As(err, new(*qmclient.Error)) {
			answered = time.Now()
		}
		return answered, failureKind("post", err)
	case err != nil:
		return answered, failureKind("events", err)
	case view.Status != events.StatusAssigned:
		return answered, string(view.Status)
	}
	return answered, ""
}
