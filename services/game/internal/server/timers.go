package server

import (
	"strings"
	"time"
)

// The room's clocks. The first two run out only for a player who holds
// the others up; nothing another connection sends can stop them:
//
//   - the idle timeout (Config.IdleTimeout) restarts only when the room
//     moves on, a seat taken or a move accepted (room.progressed), never
//     on junk, a refused move or join, or a connection the room has let
//     go; when it runs out, the players the round waits for forfeit;
//   - a player not connected during the game (dropped, or gone before it
//     started) has Config.ReconnectGrace to come back; each grace has its
//     own generation, so that the expiry of one that ran out as its
//     player came back cannot forfeit them when they drop again.
//
// The third is backfill's: a request open under one Ask for
// Config.BackfillReask, its seats unchanged, is made again under a new
// Ask (reask), as the player sent for it may never come. It runs for the
// Ask it was started for; an expiry for any other is stale.

// graceTimer is one reconnect grace; graceEnd is its expiry.
type (
	graceTimer struct {
		timer *time.Timer
		gen   int
	}
	graceEnd struct {
		player string
		gen    int
	}
)

// leave lets c go. During a game its player has ReconnectGrace to come
// back before forfeiting (expired hears when the grace runs out).
func (r *room) leave(c *client) {
	r.hangUp(c)
	if r.game == nil {
		return // a waiting player may come back; the game's start gives the grace
	}
	r.awaitReturn(c.player)
}

// awaitReturn gives player, who is not connected during the game,
// ReconnectGrace to come back, and tells the others.
func (r *room) awaitReturn(player string) {
	r.graceGen++
	end := graceEnd{player: player, gen: r.graceGen}
	r.grace[player] = graceTimer{gen: end.gen, timer: time.AfterFunc(r.cfg.ReconnectGrace, func() {
		select {
		case r.expired <- end:
		case <-r.done:
		}
	})}
	r.broadcast(message{Type: "player_left", Player: player, GraceSec: int(r.cfg.ReconnectGrace / time.Second)})
}

// idle ends a room that made no progress (no seat taken, no move
// accepted) for IdleTimeout and says how: the players who kept the
// others waiting for their move forfeit; a room whose game never
// started was abandoned.
func (r *room) idle() (outcome string) {
	if r.game == nil {
		r.broadcast(message{Type: "over", Reason: "not every player joined"})
		return "abandoned"
	}
	reason := "idle for " + r.cfg.IdleTimeout.String()
	outcome = "idle"
	if w := r.game.Waiting(); len(w) > 0 && len(w) < len(r.seats) {
		r.game.Forfeit(w...)
		reason = strings.Join(w, ", ") + " did not move within " + r.cfg.IdleTimeout.String()
		outcome = "forfeit"
	}
	r.finish(reason)
	return outcome
}

// afterFunc runs f after d unless stop is called first (time.AfterFunc;
// a test's clock runs it when the test says).
type afterFunc func(d time.Duration, f func()) (stop func() bool)

func realAfter(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// armReask keeps one re-ask timer on the room's open request (open): a
// new Ask starts it again, no request stops it. The request is made
// again only once its Ask has been open for BackfillReask.
func (r *room) armReask(open bool) {
	b := &r.backfill
	if open && b.reaskFor == b.ask {
		return // the same request: its timer runs on
	}
	if b.stopReask != nil {
		b.stopReask()
		b.stopReask = nil
	}
	b.reaskFor = 0
	if !open {
		return
	}
	ask := b.ask
	b.reaskFor = ask
	b.stopReask = b.after(r.cfg.BackfillReask, func() {
		select {
		case r.reasked <- ask:
		case <-r.done:
		}
	})
}

// reask follows the expiry of Ask ask's timer: if the room still asks
// under it, nobody came for the seats (or the player sent never joined:
// a request is filled once), so it asks again under a new Ask.
func (r *room) reask(ask int) {
	if ask != r.backfill.reaskFor {
		return // stale: the seats changed, or were filled, since
	}
	r.log.Info("backfill request open too long; asking again under a new ask", "ask", ask, "after", r.cfg.BackfillReask)
	r.backfill.ask++
	r.seatsChanged()
}
