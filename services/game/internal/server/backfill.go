package server

import (
	"maps"
	"slices"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// Backfill. A room whose mode accepts backfill (seating.acceptsBackfill) that
// loses a player for good during its game (dropped, and not back within
// ReconnectGrace) frees the seat instead of ending, while the rules let
// the game go on (rps/backfill.go: a team keeps a player, a free-for-all
// two), and asks for a player to fill it; the room of a match that
// starts early (early.go) asks for the seats its match left free as its
// game starts:
//
//   - The request (play.Backfill) is the room's free seats per team and
//     an Ask that grows whenever they change, so (match id, Ask) names
//     one request, filled at most once. A request open for
//     BackfillReask, its seats unchanged, is made again under a new Ask
//     (timers.go): the player sent for it may never have come. The room
//     hands it, with who holds its seats, to the server
//     (Server.seatsChanged): /status lists it, with who holds the seats
//     of the rooms asking (play.Status.Seated), and under Agones the
//     keeper writes it as the annotation agones.BackfillAnnotation ("" once
//     the seats are filled or the room has ended: the SDK cannot delete
//     an annotation) and keeps the players List to who holds the seats:
//     a backfilled player is added, a gone one removed, the request
//     always written before the addition or the removal (keeper.go).
//   - A player with a join token for the room, on a team with a free
//     seat, takes it (room.seat) and plays from the round in progress.
//     Under Agones a player the allocation did not seat needs a backfill
//     token (Seat.AcceptsBackfill, the room's shape: seating.backfillTeam):
//     Agones never rewrites the room annotation, so it never names them.
//     A player the room let go may not come back.
//   - A room asks only while its game is on: before, its seats wait for
//     the match's players (the reconnect grace starts with the game). A
//     draining server asks for nobody (Status, syncBackfill): its rooms
//     may be ended at the drain's deadline.
//
// A restart in place loses the game (the room starts again when the
// players it starts with are seated: room.starts), not the seats: the
// room reopens from what the last process left on the GameServer
// (seating.reopened). A player its kept seats name as let go
// (agones.LetGo: the players List is every room's, and another room may
// list them again), or an allocated player no longer on the List, was
// let go, so their seat starts free; the request that process left
// open goes on under its Ask (the allocator may be filling it),
// BackfillReask counted from the reopening; and the seats of players it
// had backfilled (every seat no allocated player holds and that request
// does not name: a player let go's, or one the allocation of a match
// that started early left empty), whose players are on the players List
// and named by no annotation, are held for them for ReconnectGrace, as
// a dropped player's seat is, before the room asks for those too, under
// an Ask above any the last process used. A room that never asked (its
// game had not started) holds nothing: the seats its allocation left
// empty are free, and asked for once its game starts. A backfilled
// player comes back with their token, as the match's own players do: it
// names the room and a team with a seat free. Which room a player on
// the List belongs to is not written anywhere, so during a hold every
// player the List held at the reopening stays on it (a player of a room
// that ended meanwhile is given back after the hold). A player the last
// process let go is not admitted again, as in it. Without Agones
// nothing is left: the room reopens from its players' tokens, whoever
// comes back first (room.learnStarts).

// backfillState is a room's side of backfill; only the room's goroutine
// touches it.
type backfillState struct {
	// left are the players this room let go for good, and those the
	// last process let go (its kept seats name them: keptValue).
	left map[string]bool
	// ask is the Ask of the last change of the free seats, and asked
	// the free seats it named (nil: no request).
	ask   int
	asked []int
	// asking: the room asks for players (its game is on, or it reopened
	// with seats free).
	asking bool
	// held are seats per team kept, after a restart, for the players the
	// last process backfilled (returning: the players List then) until
	// hold runs out.
	held      []int
	returning map[string]bool
	hold      *time.Timer
	// reaskFor is the Ask the re-ask timer runs for (0: none), and
	// stopReask stops it; after starts it (Server.after; timers.go).
	reaskFor  int
	stopReask func() bool
	after     afterFunc
	// publish is Server.seatsChanged (nil in tests of a bare room).
	publish func(matchID string, req *play.Backfill, holders []string)
}

func newBackfillState(st seating) backfillState {
	b := backfillState{left: map[string]bool{}, after: realAfter}
	if st.gone == nil {
		return b // a new room, or one that never asked
	}
	for p := range st.gone {
		b.left[p] = true // let go by the last process: not back either
	}
	b.asking, b.returning = true, st.listed
	if st.prior.Ask > 0 {
		b.ask, b.asked = st.prior.Ask, st.prior.Seats
	} else {
		// The last process asked, but its last request is gone (filled,
		// or unreadable): its Asks are unknown. A millisecond clock
		// passes any count of seat changes a process made since the one
		// before it started.
		b.ask = int(time.Now().UnixMilli())
	}
	// Held: the seats of each team no allocated player holds (let go,
	// or left empty by a match that started early), less the free
	// seats the last request named; the rest the last process filled.
	b.held = make([]int, len(st.allocated))
	for t, players := range st.allocated {
		b.held[t] = st.capacity()
		for _, p := range players {
			if !st.gone[p] {
				b.held[t]--
			}
		}
		if t < len(st.prior.Seats) {
			b.held[t] -= st.prior.Seats[t]
		}
		b.held[t] = max(0, b.held[t])
	}
	return b
}

// holdSeats hands the room's seats and request to the server as it
// opens, and starts the hold of the seats kept for returning players:
// the channel hears when it runs out (nil: nothing is held).
func (r *room) holdSeats() <-chan time.Time {
	r.seatsChanged()
	if sum(r.backfill.held) == 0 {
		return nil
	}
	r.backfill.hold = time.NewTimer(r.cfg.ReconnectGrace)
	return r.backfill.hold.C
}

// releaseHeld gives the seats held for returning players to the
// request; a game that waited for them starts without them.
func (r *room) releaseHeld() {
	clear(r.backfill.held)
	r.forgetKept() // a returning player not back holds no seat now
	r.seatsChanged()
	if r.game == nil && len(r.seats) > 0 && r.ready() {
		r.start()
	}
}

// free is how many seats team t has free for player: those nobody holds,
// less the ones held for returning players unless player is one.
func (r *room) free(player string, t int) int {
	n := r.seating.capacity() - len(r.roster[t])
	if t < len(r.backfill.held) && !r.backfill.returning[player] {
		n -= r.backfill.held[t]
	}
	return n
}

// startAsking: the game is on; a seat freed from now on is asked for.
func (r *room) startAsking() {
	r.backfill.asking = r.seating.acceptsBackfill
	r.seatsChanged()
}

// seatTaken follows a player taking a seat nobody held on team t: a
// player the last process backfilled takes back a held seat.
func (r *room) seatTaken(player string, t int) {
	if r.backfill.returning[player] && t < len(r.backfill.held) && r.backfill.held[t] > 0 {
		r.backfill.held[t]--
	}
	r.seatsChanged()
}

// gone follows a player whose reconnect grace ran out during the game.
// In a room that accepts backfill, while the game can go on without
// them, their seat is freed and asked for; otherwise they forfeit, as
// without backfill. over says the game has ended, and how.
func (r *room) gone(player string) (outcome string, over bool) {
	delete(r.grace, player)
	if !r.seating.acceptsBackfill {
		r.game.Forfeit(player)
		r.finish(player + " did not come back")
		return "forfeit", true
	}
	round, _ := r.game.Leave(player) // player is in the game: its grace was live
	if ended, _ := r.game.Over(); ended && round == nil {
		r.finish(player + " did not come back")
		return "forfeit", true
	}
	r.letGo(player)
	r.broadcast(message{Type: "player_gone", Player: player, Players: r.players(), Teams: r.teams,
		Score: r.game.Score(), FreeForAll: r.game.FreeForAll()})
	r.log.Info("player gone; seat freed for backfill", "player", player)
	if round != nil {
		r.broadcast(message{Type: "round", Round: round, Score: r.game.Score()})
		if ended, _ := r.game.Over(); ended {
			r.finish("")
			return "won", true
		}
	}
	r.seatsChanged()
	return "", false
}

// letGo frees player's seat for good: off the roster and the teams, no
// resume key, never admitted again.
func (r *room) letGo(player string) {
	drop := func(teams [][]string) {
		for t := range teams {
			teams[t] = slices.DeleteFunc(teams[t], func(p string) bool { return p == player })
		}
	}
	drop(r.roster)
	drop(r.teams)
	delete(r.seats, player)
	delete(r.kept, player)
	r.backfill.left[player] = true
	r.keysChanged() // its key admits nobody now, across a restart too
}

// cloneRoster is the roster, a copy the room may change apart from it.
func (r *room) cloneRoster() [][]string {
	out := make([][]string, len(r.roster))
	for t, ps := range r.roster {
		out[t] = slices.Clone(ps)
	}
	return out
}

// request is the room's backfill request now, Ask left to seatsChanged,
// or nil: it is not asking, or has no free seat.
func (r *room) request() *play.Backfill {
	if !r.backfill.asking {
		return nil
	}
	if r.game != nil {
		if over, _ := r.game.Over(); over {
			return nil
		}
	}
	seats := make([]int, len(r.roster))
	for t := range r.roster {
		seats[t] = r.seating.capacity() - len(r.roster[t])
		if t < len(r.backfill.held) {
			seats[t] = max(0, seats[t]-r.backfill.held[t])
		}
	}
	if sum(seats) == 0 {
		return nil
	}
	return &play.Backfill{MatchID: r.matchID, Seats: seats}
}

// seatsChanged hands the room's request and seat holders to the server
// after anything that may have changed them; a change of the free seats
// is a new Ask.
func (r *room) seatsChanged() {
	if !r.seating.acceptsBackfill || r.backfill.publish == nil {
		return
	}
	req := r.request()
	var seats []int
	if req != nil {
		seats = req.Seats
	}
	if !slices.Equal(seats, r.backfill.asked) {
		r.backfill.ask++
		r.backfill.asked = seats
	}
	if req != nil {
		req.Ask = r.backfill.ask
	}
	r.armReask(req != nil) // before the request shows: a test's clock then has its timer
	holders := slices.Concat(r.roster...)
	if sum(r.backfill.held) > 0 {
		// Which of the players on the List when the room reopened are
		// its own backfilled players is unknown: all stay on it for the
		// hold (the others are seated elsewhere, or given back after).
		for _, p := range slices.Sorted(maps.Keys(r.backfill.returning)) {
			if !slices.Contains(holders, p) {
				holders = append(holders, p)
			}
		}
	}
	r.backfill.publish(r.matchID, req, holders)
}

// seatsChanged records room matchID's backfill request (nil: none) and
// who holds its seats; its room's goroutine calls it (backfill.go).
// Under Agones the keeper writes them to the GameServer.
func (s *Server) seatsChanged(matchID string, req *play.Backfill, holders []string) {
	s.mu.Lock()
	if req != nil {
		s.requests[matchID] = *req
	} else {
		delete(s.requests, matchID)
	}
	s.holders[matchID] = holders
	s.mu.Unlock()
	if s.cfg.SDK != nil {
		s.nudge()
	}
}

// shownBackfill is what /status shows of the rooms asking for players
// (play.Status): their requests, by match id, and who holds their seats,
// each once, at most play.MaxSeated; both as the rooms handed them over
// last (seatsChanged), so that a request and its holders are of one
// moment. s.mu is held.
func (s *Server) shownBackfill() (reqs []play.Backfill, seated []string) {
	listed := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(s.requests)) {
		reqs = append(reqs, s.requests[id])
		for _, p := range s.holders[id] {
			if !listed[p] && len(seated) < play.MaxSeated {
				listed[p] = true
				seated = append(seated, p)
			}
		}
	}
	return reqs, seated
}

func sum(v []int) int {
	n := 0
	for _, x := range v {
		n += x
	}
	return n
}
