package server

import (
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

const (
	maxMessageBytes = 512
	// messagesPerSecond and messageBurst bound what one connection hands
	// its room: a game needs a move a round, and a client sending faster
	// had each message answered with an error (and, unread, logged) by
	// the room's one goroutine, as fast as it could send. Past them a
	// message is dropped unanswered.
	// They are a player's (allowances), not a connection's: a player
	// reconnecting got a fresh burst each time, and each of its joins,
	// which the room tells the others, spends one too.
	messagesPerSecond = 10
	messageBurst      = 20
	writeWait         = 5 * time.Second
	pongWait          = 30 * time.Second
	pingEvery         = pongWait * 9 / 10
)

// client is one player's connection. Its send channel is closed only by the
// goroutine of the room that received its join, exactly once (see room);
// writeLoop then closes the connection. A connection no room received
// (the room ended first) is answered with refuse and never uses send.
type client struct {
	player string
	// resume is the resume key the client came back with, if any.
	resume string
	// resumeOnly: its join token has expired, so it may only take back
	// a seat it holds (with resume), never a new one.
	resumeOnly bool
	// expires is when its join token expires (room.tokensUntil).
	expires time.Time
	// team is the team its join token seats it on (seating.team; -1:
	// the first with a free seat), and starts the players its token says
	// the game starts with (Seat.Starts; room.learnStarts).
	team, starts int
	conn         *websocket.Conn
	send         chan []byte
	// readDone is closed when readLoop returns: the client answered our
	// close frame, or the connection is gone.
	readDone chan struct{}
	// unread: a message to it was dropped (it does not read), logged once
	// a connection; only its room's goroutine touches it (room.push).
	unread bool
	// allowed is its allowance of messages: its connection's own until
	// its room admits it, then its player's (room.allowance), which the
	// room puts here; readLoop spends it.
	allowed atomic.Pointer[rate.Limiter]
}

// allowance is player's allowance of messages in the room, shared by all
// its connections, made at its first admitted join. Only the room's
// goroutine touches it, and only for a player admitted (its key checked),
// so a token copied from a URL spends nothing of its player's.
func (r *room) allowance(player string) *rate.Limiter {
	lim, ok := r.allowed[player]
	if !ok {
		lim = rate.NewLimiter(messagesPerSecond, messageBurst)
		r.allowed[player] = lim
	}
	return lim
}

func newClient(player, resume string, conn *websocket.Conn) *client {
	c := &client{player: player, resume: resume, team: -1, conn: conn, send: make(chan []byte, 16), readDone: make(chan struct{})}
	c.allowed.Store(rate.NewLimiter(messagesPerSecond, messageBurst))
	return c
}

// writeLoop writes queued messages and pings until send is closed.
func (c *client) writeLoop() {
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	defer c.conn.Close()
	for {
		select {
		case msg, ok := <-c.send:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				// Finish the close handshake: send ours, give the client a
				// moment to answer, then drop the socket. Closing at once
				// makes browsers report an unclean close.
				_ = c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
				select {
				case <-c.readDone:
				case <-time.After(time.Second):
				}
				return
			}
			if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		case <-ping.C:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

// readLoop forwards moves to the room until the connection ends. Bad
// messages get an error reply through the room; they never end the game.
func (c *client) readLoop(rm *room) {
	c.conn.SetReadLimit(maxMessageBytes)
	_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error { return c.conn.SetReadDeadline(time.Now().Add(pongWait)) })
	defer close(c.readDone)
	defer rm.send(event{kind: evLeave, client: c})
	for {
		kind, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
		if !c.allowed.Load().Allow() {
			continue
		}
		if !rm.send(clientEvent(c, kind, data)) {
			return
		}
	}
}

// fail tells a client why it cannot play and closes its send channel. Only
// the room goroutine calls it, on a join it refuses: send is still empty
// then, so the message never blocks.
func (c *client) fail(reason string) {
	c.send <- encode(message{Type: "error", Error: reason})
	close(c.send)
}

// refuse tells a connection that no room received why it cannot play, on
// the socket itself, and closes it.
func (c *client) refuse(reason string) {
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
	_ = c.conn.WriteMessage(websocket.TextMessage, encode(message{Type: "error", Error: reason}))
	_ = c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	_ = c.conn.Close()
}

// clientEvent turns one WebSocket message of c into the room's event: a
// move, or a bad message the room answers with an error.
func clientEvent(c *client, kind int, data []byte) event {
	var m clientMessage
	if kind != websocket.TextMessage || json.Unmarshal(data, &m) != nil {
		return event{kind: evBad, client: c, text: `messages are JSON text like {"type":"move","move":"rock"}`}
	}
	return event{kind: evMove, client: c, text: m.Move, msgType: m.Type}
}

func (r *room) reply(c *client, text string) { r.push(c, message{Type: "error", Error: text}) }

// push queues m for c without ever blocking the room: a client that does
// not read loses messages, and the other player keeps playing. The first
// lost on a connection is logged, not each.
func (r *room) push(c *client, m message) { r.pushEncoded(c, m.Type, encode(m)) }

// pushEncoded is push of a message of type typ, encoded as data.
func (r *room) pushEncoded(c *client, typ string, data []byte) {
	select {
	case c.send <- data:
	default:
		if !c.unread {
			c.unread = true
			r.log.Warn("player not reading; messages dropped", "player", c.player, "type", typ)
		}
	}
}

// broadcast pushes m to every connection of the room.
func (r *room) broadcast(m message) { r.broadcastBut(nil, m) }

// broadcastBut pushes m to every connection but skip, encoded once for
// all: a room of many players encoded it for each (the writers only
// read the bytes).
func (r *room) broadcastBut(skip *client, m message) {
	data := encode(m)
	for _, c := range r.clients {
		if c != skip {
			r.pushEncoded(c, m.Type, data)
		}
	}
}

// hangUp lets c go: out of clients, then its send channel closed, so that
// no later push can reach the closed channel, even after a panic between
// the two.
func (r *room) hangUp(c *client) {
	delete(r.clients, c.player)
	close(c.send)
}
