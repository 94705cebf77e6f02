package server

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
)

// The keeper. Under Agones one goroutine, started by Run, gives ended
// rooms back and sends an empty server back to Ready, from what the
// GameServer says at that moment rather than from what one room's end
// remembers (the contract: pkg/agones/room.go). The rooms List must hold
// exactly the live rooms (open here, or allocated and not opened yet)
// and the players List exactly their players. Each pass:
//
//   - reads the GameServer, opens any live room the watch has not,
//     writes the backfill request of every room (backfill.go; "" for a
//     room that asks for nobody, or has ended) and its kept seats
//     (resume.go: who it let go, too), and, once both are written,
//     removes what no live room holds: every player no live room seats
//     (its annotation, or for a room that accepts backfill who holds its
//     seats now: a give-back that failed, an unreadable room's players, a
//     player gone for good, a process that died halfway), then the id of
//     every room that has ended here;
//   - reads it again and puts back every player of a live room that the
//     players List lacks: a backfilled player, once the request that
//     counts their seat taken is written (a player admitted since the
//     requests were taken waits for the next pass), or an allocation that
//     seated a player while the pass was removing them (Agones drops an
//     allocation's value that is in the List already, so the removal took
//     the only copy); and dates the ended rooms that have left the rooms
//     List, which alone may be forgotten (forget);
//   - once the Lists are right, sends an Allocated server with an empty
//     rooms List and no open room back to Ready (or shuts it down: no
//     Reuse, or retiring), and marks a Ready server with a live room
//     Allocated again (an allocation raced its Ready): scale-down takes
//     Ready servers.
//
// A pass that could not do all of it runs again after retryWait, then
// twice as long each time up to retryWait << keepBackoff, until one
// does; a room's end and every change the watch sees start a pass too
// (nudge). So a sidecar that fails for a while delays a give-back or a
// Ready and never loses one, a process restarted in place finishes what
// the last one left undone, and nothing but the keeper (and Drain's
// final Shutdown, under keepMu) writes to the Lists or the state after
// the first Ready.

// keepBackoff bounds the wait between failed passes: retryWait (100 ms)
// << 5 is 3.2 s.
const keepBackoff = 5

// nudge asks the keeper for a pass.
func (s *Server) nudge() {
	select {
	case s.kick <- struct{}{}:
	default: // a pass is asked for already
	}
}

// keep runs passes until ctx ends: at start, when nudged, and again
// after a pass that left something undone.
func (s *Server) keep(ctx context.Context) {
	failed := 0
	for {
		var again <-chan time.Time
		if s.pass(ctx) {
			failed = 0
		} else {
			again = time.After(s.retryWait << min(failed, keepBackoff))
			failed++
		}
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-again:
		}
	}
}

// pass is one pass of the keeper; true when nothing is left to do.
func (s *Server) pass(ctx context.Context) bool {
	s.keepMu.Lock()
	defer s.keepMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	gs, err := s.gameServer(ctx)
	if err != nil {
		s.log.Warn("agones: read game server; the keeper tries again", "err", err)
		return false
	}
	if !s.isDraining() {
		s.liveRooms(gs) // an allocation whose watch event was missed
	}
	// Requests and kept seats before removals: a process restarted in
	// place takes an allocated player missing from the players List for
	// one let go only if the room has asked, and one another room lists
	// again only if the kept seats name them (seating.reopened). And
	// requests before additions (restore): the allocator releases a
	// promise's seat once its player is listed beside a later request,
	// which must then count their seat taken.
	kept := s.syncSeats(ctx, gs) // first: a failed backfill write must not hold it back
	written, ok := s.syncBackfill(ctx, gs)
	if !ok || !kept {
		return false
	}
	removed := s.giveBack(ctx, gs)
	if gs, err = s.gameServer(ctx); err != nil {
		s.log.Warn("agones: read game server; the keeper tries again", "err", err)
		return false
	}
	clean := s.restore(ctx, gs, written) && removed
	return s.settle(ctx, gs, clean) && clean
}

// holding is what gs's rooms List holds, as this process knows it: the
// rooms that have ended here, the live ones, and the players the live
// ones seat (their annotations, or for an open room that accepts
// backfill who holds its seats now; an unreadable one seats nobody, and
// is ended once liveRooms has seen it). backfilled are the seated
// players no annotation of their room names.
type holding struct {
	ended, live []string
	seated      map[string]bool
	backfilled  map[string]bool
}

func (s *Server) holding(gs sdk.GameServer) holding {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holdingLocked(gs)
}

// holdingLocked is holding with s.mu held.
func (s *Server) holdingLocked(gs sdk.GameServer) holding {
	h := holding{seated: map[string]bool{}, backfilled: map[string]bool{}}
	for _, id := range liveIDs(gs) {
		if _, over := s.ended[id]; over {
			h.ended = append(h.ended, id)
			continue
		}
		h.live = append(h.live, id)
		room, err := roomOf(gs, id)
		holders, open := s.holders[id]
		if !open && err == nil {
			holders = room.Players()
		}
		for _, p := range holders {
			h.seated[p] = true
			if err != nil || !slices.Contains(room.Players(), p) {
				h.backfilled[p] = true
			}
		}
	}
	return h
}

// giveBack removes from gs's Lists what no live room holds: the players
// no live room seats, then the ids of the rooms that ended here. True if
// every removal succeeded (or found the value gone already).
func (s *Server) giveBack(ctx context.Context, gs sdk.GameServer) bool {
	h := s.holding(gs)
	ok := true
	for _, p := range gs.Status.Lists[agones.ListPlayers].Values {
		if !h.seated[p] {
			ok = s.remove(ctx, agones.ListPlayers, p) && ok
		}
	}
	for _, id := range h.ended {
		ok = s.remove(ctx, agones.ListRooms, id) && ok
	}
	return ok
}

func (s *Server) remove(ctx context.Context, list, value string) bool {
	_, err := s.cfg.SDK.RemoveListValue(ctx, list, value)
	if err == nil || errors.Is(err, sdk.ErrNotFound) {
		return true
	}
	s.log.Warn("agones: give back; the keeper tries again", "list", list, "value", value, "err", err)
	return false
}

// restore puts back on the players List every player of a live room it
// lacks, and dates the ended rooms gs's rooms List no longer holds. A
// backfilled player is added only if written, what the rooms held when
// their requests were written (syncBackfill), has them backfilled: one
// admitted since waits for the next pass (their admission nudged it),
// which writes the request that counts their seat taken first. True if
// no ended room is left in the List, no player waits, and no put-back
// failed for a reason that waiting may cure.
func (s *Server) restore(ctx context.Context, gs sdk.GameServer, written holding) bool {
	h := s.holding(gs)
	ok := len(h.ended) == 0
	players, declared := gs.Status.Lists[agones.ListPlayers]
	for _, p := range slices.Sorted(maps.Keys(h.seated)) {
		if !declared || slices.Contains(players.Values, p) {
			continue
		}
		if h.backfilled[p] && !written.backfilled[p] {
			ok = false
			continue
		}
		_, err := s.cfg.SDK.AddListValue(ctx, agones.ListPlayers, p)
		switch {
		case (err == nil || errors.Is(err, sdk.ErrExists)) && h.backfilled[p]:
			s.log.Info("agones: a player who filled a free seat added to the players List", "player", p)
		case err == nil || errors.Is(err, sdk.ErrExists):
			s.log.Warn("agones: a live room's player was not on the players List; put back", "player", p)
		case errors.Is(err, sdk.ErrOutOfRange):
			// The List is full: Agones cut an allocation's values at its
			// capacity (a selector without list room). Waiting cures nothing.
			s.log.Error("agones: a live room's player is not on the full players List", "player", p, "err", err)
		default:
			s.log.Warn("agones: put a player back; the keeper tries again", "player", p, "err", err)
			ok = false
		}
	}
	s.date(gs)
	return ok
}

// date starts the memory (forget) of the rooms that ended here and have
// left gs's rooms List.
func (s *Server) date(gs sdk.GameServer) {
	listed := map[string]bool{}
	for _, id := range liveIDs(gs) {
		listed[id] = true
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, at := range s.ended {
		if at.IsZero() && !listed[id] {
			s.ended[id] = now
		}
	}
}

// settle puts the GameServer in the state its rooms call for: a Ready
// one with a live room back to Allocated, and, once the Lists are clean,
// an Allocated one with an empty rooms List to Ready or Shutdown (empty).
// A draining server is left to Drain. True unless a sidecar call failed.
func (s *Server) settle(ctx context.Context, gs sdk.GameServer, clean bool) bool {
	live := s.holding(gs).live
	switch {
	case s.isDraining():
		return true
	case gs.Status.State == agones.StateReady && len(live) > 0:
		if err := s.retry(ctx, func() error { return s.cfg.SDK.Allocate(ctx) }); err != nil {
			s.log.Error("agones: mark Allocated again; the keeper tries again", "err", err)
			return false
		}
		s.log.Warn("agones: a room was allocated as the server went Ready; Allocated again", "rooms", live)
		return true
	case gs.Status.State != agones.StateAllocated || len(liveIDs(gs)) > 0 || !clean:
		return true
	}
	return s.empty(ctx)
}

// empty runs when the last room has ended and been given back: the
// server goes back to Ready for reuse, or shuts down, as configured (a
// retiring one shuts down), unless a room has opened since the
// GameServer was read (a join that read it after an allocation: the
// next pass sees that allocation). The sidecar is retried; if it keeps
// failing the keeper tries again.
func (s *Server) empty(ctx context.Context) bool {
	what, call := "ready again for reuse", s.cfg.SDK.Ready
	switch {
	case s.isRetiring():
		what, call = "retiring: shutting down", s.cfg.SDK.Shutdown
	case !s.cfg.Reuse:
		what, call = "shutting down", s.cfg.SDK.Shutdown
	}
	s.mu.Lock()
	open := len(s.rooms)
	s.mu.Unlock()
	if open > 0 {
		return true
	}
	if err := s.retry(ctx, func() error { return call(ctx) }); err != nil {
		s.log.Error("agones: after the last room; the keeper tries again", "err", err)
		return false
	}
	s.log.Info("agones: every room ended; " + what)
	return true
}

// isDraining says whether Drain has begun.
func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// syncBackfill writes every room's backfill request to its annotation
// (agones.BackfillAnnotation) where gs differs: the request of each
// room asking now, and "" for every other room that has one (filled,
// ended, or the server draining). It returns what the rooms held as
// their requests were taken (the rooms hand both over at once:
// seatsChanged), and true if every write succeeded.
func (s *Server) syncBackfill(ctx context.Context, gs sdk.GameServer) (holding, bool) {
	want := map[string]string{}
	prefix := agones.BackfillAnnotation("")
	for key, v := range gs.ObjectMeta.Annotations {
		if id, ok := strings.CutPrefix(key, prefix); ok && v != "" {
			want[id] = ""
		}
	}
	s.mu.Lock()
	if !s.draining {
		for id, req := range s.requests {
			want[id] = agones.EncodeBackfill(req)
		}
	}
	written := s.holdingLocked(gs)
	s.mu.Unlock()
	return written, s.setAnnotations(ctx, gs, want, agones.BackfillKey, agones.BackfillAnnotation, "a backfill request")
}

// setAnnotations writes each room's value of want that gs does not hold
// already ("" clears one), as the SDK takes it (key) and the GameServer
// holds it (annotation), and reports whether every write went through;
// what names the values in the log.
func (s *Server) setAnnotations(ctx context.Context, gs sdk.GameServer, want map[string]string,
	key, annotation func(matchID string) string, what string) bool {
	ok := true
	for _, id := range slices.Sorted(maps.Keys(want)) {
		if v, set := gs.ObjectMeta.Annotations[annotation(id)]; set && v == want[id] || !set && want[id] == "" {
			continue
		}
		if err := s.cfg.SDK.SetAnnotation(ctx, key(id), want[id]); err != nil {
			s.log.Warn("agones: write "+what+"; the keeper tries again", "room", id, "err", err)
			ok = false
		}
	}
	return ok
}
