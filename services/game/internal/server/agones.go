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
	RemoveListValue(ctx context.Context, name, value string) (sdk.List, error)
	SetLabel(ctx context.Context, key, value string) error
}

var _ SDK = (*sdk.Client)(nil)

// Run drives the Agones lifecycle until ctx ends: Ready (call it once the
// listener is up; a process restarted in place with live rooms stays
// Allocated), a health ping every HealthEvery, and a watch of the
// GameServer that opens a room for every match id in its rooms List
// (room.go in pkg/agones: the contract) and retires the server when its
// annotations near Kubernetes' limit (retire.go). Without an SDK (the
// local stack) it only waits.
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
		if _, err := s.open(id, allocatedSeating(room)); err != nil && !errors.Is(err, errRoomEnded) {
			s.log.Warn("agones: allocated room not opened", "room", id, "err", err)
		}
	}
}

// unplayable gives back the rooms slot of a live id whose room cannot be
// read (no annotation, or one this server cannot decode): no player could
// ever join it, and its slot would be held for the server's life. Its
// players are unknown, so the players List keeps them.
func (s *Server) unplayable(id string, why error) {
	s.mu.Lock()
	if _, seen := s.ended[id]; seen || s.draining {
		s.mu.Unlock()
		return
	}
	s.ended[id] = time.Time{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.log.Error("agones: live room cannot be opened; giving its slot back", "room", id, "err", why)
	go func() {
		defer s.wg.Done()
		s.release(id, nil)
		s.mu.Lock()
		s.ended[id] = s.now()
		s.mu.Unlock()
		s.whenEmpty() // it may have kept an empty server from Ready
	}()
}

// allocatedRoom reads the GameServer for live match matchID and its
// room: a player's join can beat the watch to it.
func (s *Server) allocatedRoom(ctx context.Context, matchID string) (agones.Room, bool) {
	gs, err := s.gameServer(ctx)
	if err != nil {
		s.log.Warn("agones: read game server", "err", err)
		return agones.Room{}, false
	}
	if !slices.Contains(liveIDs(gs), matchID) {
		return agones.Room{}, false
	}
	room, err := roomOf(gs, matchID)
	if err != nil {
		s.log.Warn("agones: live room cannot be opened", "room", matchID, "err", err)
		return agones.Room{}, false
	}
	return room, true
}

// release gives an ended room's share of the game server back: its
// players off the players List, but for those seated in another live
// room here (an allocation adds a player once), then its id off the
// rooms List. The id goes last: a process that dies in between reopens
// the room when it restarts and gives it back again, where the other
// order would leave its players in the List for good. The sidecar is
// retried a few times: a room not given back keeps its slot.
func (s *Server) release(matchID string, players []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	retry := func(what string, f func() error) {
		err := s.retry(ctx, func() error {
			if err := f(); !errors.Is(err, sdk.ErrNotFound) {
				return err
			}
			return nil // given back already
		})
		if err != nil {
			s.log.Error("agones: give back "+what, "room", matchID, "err", err)
		}
	}
	keep := s.seatedElsewhere(ctx, matchID)
	for _, p := range players {
		if !keep[p] {
			retry("player "+p, func() error { _, err := s.cfg.SDK.RemoveListValue(ctx, agones.ListPlayers, p); return err })
		}
	}
	retry("room", func() error { _, err := s.cfg.SDK.RemoveListValue(ctx, agones.ListRooms, matchID); return err })
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

// seatedElsewhere are the players of the live rooms other than matchID:
// those of the GameServer's rooms List as it is now (an allocation this
// process has not heard of yet counts), and of the rooms open here.
func (s *Server) seatedElsewhere(ctx context.Context, matchID string) map[string]bool {
	seated := map[string]bool{}
	if gs, err := s.gameServer(ctx); err != nil {
		s.log.Warn("agones: read game server; only the open rooms' players are kept", "err", err)
	} else {
		for _, id := range liveIDs(gs) {
			if room, err := roomOf(gs, id); id != matchID && err == nil {
				for _, p := range room.Players() {
					seated[p] = true
				}
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, rm := range s.rooms {
		if id != matchID {
			for _, p := range rm.seating.players() {
				seated[p] = true
			}
		}
	}
	return seated
}

// empty runs when the last room ended: a server that is not shutting down
// goes back to Ready for reuse, or shuts down, as configured (a retiring
// one shuts down), unless an allocation has meanwhile added a room the
// watch has not opened yet.
func (s *Server) empty() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if gs, err := s.gameServer(ctx); err == nil && s.unopened(gs) {
		s.liveRooms(gs)
		return
	}
	var err error
	switch {
	case s.isRetiring():
		err = s.cfg.SDK.Shutdown(ctx)
		s.log.Info("agones: every room ended; retiring: shutting down")
	case s.cfg.Reuse:
		err = s.cfg.SDK.Ready(ctx)
		s.log.Info("agones: every room ended; ready again for reuse")
	default:
		err = s.cfg.SDK.Shutdown(ctx)
		s.log.Info("agones: every room ended; shutting down")
	}
	if err != nil {
		s.log.Error("agones: after the last room", "err", err)
	}
}

// unopened says whether gs lists a live room that is neither open nor
// ended here.
func (s *Server) unopened(gs sdk.GameServer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range liveIDs(gs) {
		_, open := s.rooms[id]
		_, ended := s.ended[id]
		if !open && !ended {
			return true
		}
	}
	return false
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
		if err := s.cfg.SDK.Shutdown(sctx); err != nil {
			s.log.Error("agones: shutdown", "err", err)
		}
	}
}
