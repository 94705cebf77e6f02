package server

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
)

// SDK is what the game server needs of the Agones sidecar (*sdk.Client).
type SDK interface {
	Ready(ctx context.Context) error
	Health(ctx context.Context) error
	Shutdown(ctx context.Context) error
	GameServer(ctx context.Context) (sdk.GameServer, error)
	Watch(ctx context.Context, f func(sdk.GameServer)) error
	Allocate(ctx context.Context) error
	AddListValue(ctx context.Context, name, value string) (sdk.List, error)
	RemoveListValue(ctx context.Context, name, value string) (sdk.List, error)
	SetLabel(ctx context.Context, key, value string) error
	SetAnnotation(ctx context.Context, key, value string) error
}

var _ SDK = (*sdk.Client)(nil)

// Run drives the Agones lifecycle until ctx ends: Ready (call it once the
// listener is up; a process restarted in place with live rooms stays
// Allocated), a health ping every HealthEvery, and a watch of the
// GameServer that opens a room for every match id in its rooms List
// (room.go in pkg/agones: the contract) and retires the server when its
// annotations near Kubernetes' limit (retire.go), and the keeper
// (keeper.go), which gives ended rooms back and sends an empty server
// back to Ready. Without an SDK (the local stack) it only waits.
func (s *Server) Run(ctx context.Context) error {
	if s.cfg.SDK == nil {
		<-ctx.Done()
		return nil
	}
	if err := s.ready(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting: a stop, not a failure
		}
		return err
	}
	s.log.Info("agones: ready")
	go s.watch(ctx)
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		s.keep(ctx)
	}()
	// Run returns once the keeper has: nothing it started calls the
	// sidecar after.
	defer func() { <-kept }()
	t := time.NewTicker(s.cfg.HealthEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.cfg.SDK.Health(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("agones: health ping", "err", err)
			}
		}
	}
}

// sidecarWait is how long Ready is retried while the SDK sidecar is not
// answering yet: it may start after the game container (docker-compose,
// or a pod without native sidecars).
const sidecarWait = 30 * time.Second

// ready marks the GameServer Ready, retrying while the sidecar starts.
func (s *Server) ready(ctx context.Context) error {
	deadline := time.Now().Add(sidecarWait)
	for {
		err := s.readyOnce(ctx)
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		s.log.Warn("agones: sidecar not ready yet; again in 500ms", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// readyOnce marks the GameServer Ready, unless this process restarted in
// place on an Allocated GameServer with live rooms: Ready would offer a
// server with running games to scale-down, as if it were empty. The
// watch opens those rooms again. A retiring server with no live room
// shuts down instead: no allocation may pick it.
func (s *Server) readyOnce(ctx context.Context) error {
	gs, err := s.gameServer(ctx)
	if err != nil {
		return err
	}
	if _, ok := gs.Status.Lists[agones.ListRooms]; !ok {
		// A Fleet of an older chart (a rooms counter): no room can open.
		s.log.Error("agones: the GameServer has no rooms List; no room will open (its Fleet must declare the lists rooms and players)")
	}
	if live := liveIDs(gs); gs.Status.State == agones.StateAllocated && len(live) > 0 {
		s.log.Info("agones: restarted with live rooms; staying Allocated", "rooms", live)
		return nil
	}
	if s.isRetiring() {
		s.log.Info("agones: retiring, with no live room; shutting down instead of Ready")
		return s.cfg.SDK.Shutdown(ctx)
	}
	return s.cfg.SDK.Ready(ctx)
}

// liveIDs are the match ids of the rooms live on gs: its rooms List.
func liveIDs(gs sdk.GameServer) []string { return gs.Status.Lists[agones.ListRooms].Values }

// roomOf is the room of live match id on gs, from its annotation.
func roomOf(gs sdk.GameServer, id string) (agones.Room, error) {
	v, ok := gs.ObjectMeta.Annotations[agones.MatchAnnotationPrefix+id]
	if !ok {
		return agones.Room{}, errors.New("no room annotation")
	}
	return agones.DecodeRoom(v)
}

// watch follows the GameServer, again after every break, until ctx ends.
func (s *Server) watch(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.cfg.SDK.Watch(ctx, func(gs sdk.GameServer) {
			s.observe(gs)
			s.liveRooms(gs)
			s.nudge() // an allocation, or a state change: the keeper looks
		})
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("agones: watch ended; again in 1s", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// liveRooms opens a room for every match id in gs's rooms List that is
// neither open nor ended here. Only the List says which rooms are live:
// Agones keeps an allocation's annotation for the GameServer's whole
// life, so an annotation alone may be a room that ended long ago, before
// a restart or the ended-room memory.
func (s *Server) liveRooms(gs sdk.GameServer) {
	defer s.reopenedAll.Store(true)
	for _, id := range liveIDs(gs) {
		s.mu.Lock()
		_, open := s.rooms[id]
		_, ended := s.ended[id]
		s.mu.Unlock()
		if open || ended {
			continue
		}
		room, err := roomOf(gs, id)
		if err != nil {
			s.unplayable(id, err)
			continue
		}
		if _, err := s.open(id, allocatedSeating(room).reopened(gs, id)); err != nil && !errors.Is(err, errRoomEnded) {
			s.log.Warn("agones: allocated room not opened", "room", id, "err", err)
		}
	}
}

// unplayable marks a live id whose room cannot be read (no annotation,
// or one this server cannot decode) as ended, so that the keeper gives
// its rooms slot back, and its players, whom no readable room seats,
// with it: no player could ever join it, and its slot would be held for
// the server's life.
func (s *Server) unplayable(id string, why error) {
	s.mu.Lock()
	_, seen := s.ended[id]
	if !seen {
		s.ended[id] = time.Time{} // not given back yet: never forgotten
	}
	s.mu.Unlock()
	if !seen {
		s.log.Error("agones: live room cannot be opened; giving its slot back", "room", id, "err", why)
		s.nudge()
	}
}

// notHereFor is how long a read of the GameServer that did not find a
// match answers the joins of that match with no read of their own: a
// player replaying a token of a match not here (another server's, or an
// ended room's after a restart) made a sidecar read of the whole
// GameServer per request, tens of KiB to decode, as fast as it could
// ask. A join that beat the watch to its allocation waits for the watch
// (which opens the room) or this long at most.
const notHereFor = time.Second

// readTimeout bounds a join's read of the GameServer.
const readTimeout = 5 * time.Second

// allocatedRoom reads the GameServer for live match matchID and its
// room's seating: a player's join can beat the watch to it. Joins
// reading at once share one read.
func (s *Server) allocatedRoom(ctx context.Context, matchID string) (seating, bool) {
	now := s.now()
	s.mu.Lock()
	at, absent := s.notHere[matchID]
	s.mu.Unlock()
	if absent && now.Sub(at) < notHereFor {
		return seating{}, false
	}
	// Not on the first caller's context: one that hangs up must not fail
	// the read the others share, nor leave its match unremembered. A
	// failed read is remembered as an answer too (and logged once).
	v, err, _ := s.reads.Do("gameserver", func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readTimeout)
		defer cancel()
		gs, err := s.gameServer(rctx)
		if err != nil {
			s.log.Warn("agones: read game server for a join", "err", err)
		}
		return gs, err
	})
	// Remembered from the answer, not the ask: a read may take seconds.
	if err != nil {
		s.markNotHere(matchID, s.now())
		return seating{}, false
	}
	gs := v.(sdk.GameServer)
	if !slices.Contains(liveIDs(gs), matchID) {
		s.markNotHere(matchID, s.now())
		return seating{}, false
	}
	room, err := roomOf(gs, matchID)
	if err != nil {
		s.log.Warn("agones: live room cannot be opened", "room", matchID, "err", err)
		return seating{}, false
	}
	return allocatedSeating(room).reopened(gs, matchID), true
}

// markNotHere remembers that match matchID was not found allocated here
// at now, forgetting the memories past notHereFor once there are many
// (a player holds the tokens of a few matches at most).
func (s *Server) markNotHere(matchID string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.notHere) >= 1024 {
		for id, at := range s.notHere {
			if now.Sub(at) >= notHereFor {
				delete(s.notHere, id)
			}
		}
	}
	s.notHere[matchID] = now
}

// retry calls the sidecar with f until it succeeds, at most five times
// while ctx lasts, waiting retryWait and then twice as long each time,
// and returns f's last error.
func (s *Server) retry(ctx context.Context, f func() error) error {
	for i := 0; ; i++ {
		err := f()
		if err == nil || i == 4 || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(s.retryWait << i):
		}
	}
}

// Drain stops taking rooms and waits for the running ones to finish. At
// ctx's end the rooms still running are ended (their players are told
// the server is shutting down). Then, with an SDK, the game server asks
// Agones to shut it down. Drain is what SIGTERM triggers.
func (s *Server) Drain(ctx context.Context) {
	s.mu.Lock()
	s.draining = true
	open := len(s.rooms)
	s.mu.Unlock()
	s.nudge() // under Agones the keeper clears the rooms' backfill requests: nobody new for them
	s.log.Info("draining: no new rooms", "rooms", open)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		rooms := make([]*room, 0, len(s.rooms))
		for _, rm := range s.rooms {
			rooms = append(rooms, rm)
		}
		s.mu.Unlock()
		s.log.Warn("drain deadline: ending running rooms", "rooms", len(rooms))
		for _, rm := range rooms {
			rm.send(event{kind: evShutdown})
		}
		<-done
	}
	if s.cfg.SDK != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Under the keeper's lock: a Ready it decided on before the drain
		// began lands before this Shutdown, never after it.
		s.keepMu.Lock()
		defer s.keepMu.Unlock()
		if err := s.cfg.SDK.Shutdown(sctx); err != nil {
			s.log.Error("agones: shutdown", "err", err)
		}
	}
}
