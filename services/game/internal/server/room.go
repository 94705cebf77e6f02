package server

import (
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/services/game/internal/rps"
)

type eventKind int

const (
	evJoin eventKind = iota
	evLeave
	evMove
	evBad
	evShutdown
)

type event struct {
	kind    eventKind
	client  *client
	text    string
	msgType string
}

// Outcomes of a room besides those of the game (won, forfeit, idle,
// abandoned, shutdown).
const outcomePanic = "panic"

// room is where one match is played, named by its match id. Only run
// touches its fields after newRoom; other goroutines read only the fixed
// matchID and players, and use the channels.
//
// Channel ownership: the room goroutine is the only one that closes a
// client's send channel once the room has received that client's join, and
// it closes each exactly once, when it refuses the connection (fail), lets
// it go (the player left, or came back on a new connection) or ends. The
// room pushes only to the connections in clients, and a connection leaves
// clients in the same step that closes its channel, so the room never
// writes to a channel it closed. A refused or replaced connection keeps its
// read loop until its socket closes; its events are dropped (handle).
type room struct {
	// matchID names the room: the match played in it.
	matchID string
	// seating says who may sit where (fixed; serveWS reads it too), and
	// learned the Starts its tokens say when the first said none (early.go).
	seating seating
	learned int
	cfg     Config
	log     *slog.Logger
	events  chan event
	done    chan struct{}

	clients map[string]*client       // player -> live connection
	allowed map[string]*rate.Limiter // player -> its allowance (allowance)
	// tokensUntil is when the last join token this room let past its
	// key check expires: without Agones the room's id is refused until
	// then at least (Server.roomEnded).
	tokensUntil time.Time
	// seats holds the digest of each seated player's resume key: a join
	// token admits once; coming back takes the key the welcome message
	// gave, so a token copied from a URL or a log cannot take the seat
	// over. kept are the digests a process before this one kept, of
	// players not back yet, and keep hands them over (resume.go).
	seats, kept map[string]string
	keep        func(matchID, seats string)
	// teams are the seated players by team, in order of first join (the
	// game's teams once it started).
	teams [][]string
	game  *rps.Game
	// roster holds the seats by team: who holds each, joined or not. An
	// allocated room starts with the allocation's players; a room without
	// Agones, empty, and its seats are taken in order of arrival. Its
	// free seats are those backfill fills (backfill.go).
	roster [][]string
	// backfill is the state of a room that accepts backfill (backfill.go).
	backfill backfillState
	// grace holds the reconnect grace of each player not connected
	// during the game; expired hears when one runs out, and an expiry
	// whose generation is not the player's grace now is stale (timers.go).
	grace    map[string]graceTimer
	graceGen int
	expired  chan graceEnd
	// reasked hears the Ask whose re-ask timer ran out (timers.go).
	reasked chan int
	// progressed says the event just handled moved the room on (a seat
	// taken, a move accepted): only that restarts the idle timeout.
	progressed bool
	onEvent    func(matchID string, ev event) // Server.onEvent
}

func newRoom(matchID string, st seating, cfg Config, log *slog.Logger) *room {
	return &room{
		matchID: matchID, seating: st, learned: st.shape.Starts, cfg: cfg, log: log,
		events: make(chan event), done: make(chan struct{}), teams: noTeams(st.teams()),
		clients: map[string]*client{}, allowed: map[string]*rate.Limiter{}, seats: map[string]string{}, kept: maps.Clone(st.kept), grace: map[string]graceTimer{}, expired: make(chan graceEnd, 2),
		roster: st.roster(), backfill: newBackfillState(st), reasked: make(chan int),
	}
}

// send hands ev to the room; false once the room has ended.
func (r *room) send(ev event) bool {
	select {
	case r.events <- ev:
		return true
	case <-r.done:
		return false
	}
}

// run plays the room until it ends and says how: won, forfeit, idle,
// abandoned (nobody played), shutdown, or panic (a bug in the room's code:
// that room ends, its players are told, the server and its other rooms go
// on).
func (r *room) run() (outcome string) {
	defer close(r.done)
	defer func() {
		if v := recover(); v != nil {
			r.log.Error("room failed; ending it", "panic", v, "stack", string(debug.Stack()))
			r.abort("the room failed (internal error)")
			outcome = outcomePanic
		}
	}()
	idle := time.NewTimer(r.cfg.IdleTimeout)
	defer idle.Stop()
	held := r.holdSeats()
	r.log.Info("room opened", "allocated", r.seating.allocated, "seats", r.seating.seats(), "backfill", r.seating.acceptsBackfill)
	for {
		select {
		case ev := <-r.events:
			if ev.kind == evShutdown {
				if r.game != nil {
					r.finish("the server is shutting down")
				} else {
					r.broadcast(message{Type: "over", Reason: "the server is shutting down"})
				}
				r.close()
				return "shutdown"
			}
			if r.handle(ev) {
				r.close()
				return "won"
			}
			if r.progressed {
				r.progressed = false
				idle.Reset(r.cfg.IdleTimeout)
			}
		case e := <-r.expired:
			if g, ok := r.grace[e.player]; !ok || g.gen != e.gen {
				continue // the player came back (and maybe dropped again since)
			}
			if outcome, over := r.gone(e.player); over {
				r.close()
				return outcome
			}
		case <-held:
			held = nil
			r.releaseHeld()
		case ask := <-r.reasked:
			r.reask(ask)
		case <-idle.C:
			outcome := r.idle()
			r.close()
			return outcome
		}
	}
}

// handle applies one event; true means the room is done.
func (r *room) handle(ev event) bool {
	if r.onEvent != nil {
		r.onEvent(r.matchID, ev)
	}
	c := ev.client
	if ev.kind != evJoin && r.clients[c.player] != c {
		// A connection this room refused or replaced: its send channel is
		// closed, and nothing it says counts.
		return false
	}
	switch ev.kind {
	case evJoin:
		r.join(c)
	case evLeave:
		r.leave(c)
	case evBad:
		r.reply(c, ev.text)
	case evMove:
		return r.move(c, ev.msgType, ev.text)
	}
	return false
}

// join seats c, or refuses it: a seated player comes back only with its
// resume key (the only way in with an expired join token), and a team
// takes its capacity of players. The last of the players the game
// starts with (early.go) starts it; a player coming back during the
// game resumes it.
func (r *room) join(c *client) {
	digest, seated := r.seats[c.player]
	if !seated {
		digest, seated = r.kept[c.player] // seated before a restart
	}
	if c.resumeOnly && !seated {
		c.fail("join refused: " + jointoken.ErrExpired.Error() + "; only a seated player may come back with it")
		return
	}
	if seated && !keyMatches(c.resume, digest) {
		c.fail("join refused: this join token was used already; come back with the resume key of your first connection")
		return
	}
	allowed := r.allowance(c.player)
	if !allowed.Allow() { // a join makes the room tell the others
		c.fail("join refused: too many joins; come back in a few seconds")
		return
	}
	c.allowed.Store(allowed)
	if c.expires.After(r.tokensUntil) {
		r.tokensUntil = c.expires
	}
	_, back := r.seats[c.player] // seated here already: the teams stay as they are
	if old, ok := r.clients[c.player]; ok {
		r.hangUp(old) // the same player on a new connection wins
	} else if !back {
		if reason := r.seat(c); reason != "" {
			c.fail(reason)
			return
		}
	}
	r.clients[c.player] = c
	if g, ok := r.grace[c.player]; ok {
		g.timer.Stop()
		delete(r.grace, c.player)
	}
	r.push(c, message{Type: "welcome", MatchID: r.matchID, You: c.player, BestOf: r.cfg.BestOf, Resume: c.resume})
	switch {
	case back:
		r.cameBack(c)
	case r.game != nil:
		r.broadcast(r.resumed()) // a player took a free seat: new teams
	case r.ready():
		r.start()
	default:
		r.broadcast(r.waiting())
	}
}

// start starts the game once the players it starts with are seated
// (early.go).
// A seated player who dropped while the room waited gets the reconnect
// grace now, as one who drops during the game does: the game does not
// wait IdleTimeout for them.
func (r *room) start() {
	if r.seating.allocated != nil {
		r.teams = r.cloneRoster() // the allocation's order, then the players who filled free seats
	}
	r.game = rps.New(r.teams, r.seating.capacity(), r.cfg.BestOf)
	r.broadcast(message{Type: "start", Players: r.players(), Teams: r.teams, BestOf: r.cfg.BestOf, FreeForAll: r.game.FreeForAll()})
	r.log.Info("game started", "teams", r.teams)
	for _, p := range r.players() {
		if _, here := r.clients[p]; !here {
			r.awaitReturn(p)
		}
	}
	r.startAsking()
}

// seat gives c's player a seat on its team (c.team; -1: the first team
// with a free seat), or says why there is none. A player who holds a
// seat (the allocation's) takes it; any other takes a free one: in order
// of arrival before the game, or one a player freed (backfill.go).
func (r *room) seat(c *client) (refusal string) {
	if r.backfill.left[c.player] {
		return "join refused: you left this game for good; your seat was given to another player"
	}
	if refusal := r.learnStarts(c.starts); refusal != "" {
		return refusal
	}
	if len(r.seats) >= r.seating.seats() {
		return "room is full"
	}
	t := c.team
	for i := 0; t < 0 && i < len(r.teams); i++ {
		if r.free(c.player, i) > 0 {
			t = i
		}
	}
	if !slices.Contains(r.roster[t], c.player) {
		if r.free(c.player, t) <= 0 {
			return fmt.Sprintf("team %d is full", t+1)
		}
		if r.game != nil {
			if err := r.game.Join(c.player, t); err != nil {
				return "join refused: " + err.Error()
			}
		}
		r.roster[t] = append(r.roster[t], c.player)
		defer r.seatTaken(c.player, t)
	}
	r.teams[t] = append(r.teams[t], c.player)
	r.giveKey(c)
	r.progressed = true
	return ""
}

// players are the seated players, team by team.
func (r *room) players() []string { return slices.Concat(r.teams...) }

// move plays c's message of type msgType and move text; a bad one is
// answered with an error. True means the move won the game.
func (r *room) move(c *client, msgType, text string) bool {
	if msgType != "move" {
		r.reply(c, `unknown message type "`+msgType+`": want "move"`)
		return false
	}
	if r.game == nil {
		r.reply(c, "the game has not started: waiting for every player to join")
		return false
	}
	m, err := rps.ParseMove(text)
	if err != nil {
		r.reply(c, err.Error())
		return false
	}
	round, err := r.game.Play(c.player, m)
	r.progressed = err == nil
	switch {
	case err != nil:
		r.reply(c, err.Error())
	case round == nil:
		// Everyone hears who has moved (not the move): the others see
		// whom the round waits for.
		r.broadcast(message{Type: "moved", Player: c.player})
	default:
		r.broadcast(message{Type: "round", Round: round, Score: r.game.Score()})
		if over, _ := r.game.Over(); over {
			r.finish("")
			return true
		}
	}
	return false
}

func (r *room) finish(reason string) {
	_, winners := r.game.Over()
	m := message{Type: "over", Winners: winners, Score: r.game.Score(), Reason: reason}
	if len(winners) == 1 {
		m.Winner = winners[0]
	}
	r.broadcast(m)
	r.log.Info("game over", "winners", winners, "reason", reason)
}

// close ends every connection and timer of the room.
func (r *room) close() {
	for _, c := range r.clients {
		r.hangUp(c)
	}
	for _, g := range r.grace {
		g.timer.Stop()
	}
	if r.backfill.hold != nil {
		r.backfill.hold.Stop()
	}
	r.armReask(false)
	r.log.Info("room closed")
}

// abort ends a room whose code panicked: its players are told why and
// disconnected. The room's state may be half-updated, so abort touches only
// what close needs; a second panic here is logged, not raised, so that one
// room's bug never ends the process.
func (r *room) abort(reason string) {
	defer func() {
		if v := recover(); v != nil {
			r.log.Error("ending a failed room failed", "panic", v)
		}
	}()
	r.broadcast(message{Type: "over", Reason: reason})
	r.close()
}
