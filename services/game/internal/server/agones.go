package server

import (
	"context"
	"errors"
	"slices"
	"strings"
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
	CounterDiff(ctx context.Context, name string, diff int64) (sdk.Counter, error)
	RemoveListValue(ctx context.Context, name, value string) (sdk.List, error)
}

var _ SDK = (*sdk.Client)(nil)

// Run drives the Agones lifecycle until ctx ends: Ready (call it once the
// listener is up), a health ping every HealthEvery, and a watch of the
// GameServer that opens a room for every allocation it sees. Without an
// SDK (the local stack) it only waits.
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
		err := s.cfg.SDK.Ready(ctx)
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

// watch follows the GameServer, again after every break, until ctx ends.
func (s *Server) watch(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.cfg.SDK.Watch(ctx, s.allocations)
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

// allocations opens a room for every match annotation not seen before.
func (s *Server) allocations(gs sdk.GameServer) {
	for key, value := range gs.ObjectMeta.Annotations {
		matchID, ok := strings.CutPrefix(key, agones.MatchAnnotationPrefix)
		if !ok || matchID == "" {
			continue
		}
		if _, err := s.open(matchID, strings.Split(value, ",")); err != nil && !errors.Is(err, errRoomEnded) {
			s.log.Warn("agones: allocated room not opened", "room", matchID, "err", err)
		}
	}
}

// allocatedPlayers asks the GameServer whether match matchID was allocated
// here and to whom: a player's join can beat the watch to it.
func (s *Server) allocatedPlayers(ctx context.Context, matchID string) ([]string, bool) {
	gs, err := s.cfg.SDK.GameServer(ctx)
	if err != nil {
		s.log.Warn("agones: read game server", "err", err)
		return nil, false
	}
	v, ok := gs.ObjectMeta.Annotations[agones.MatchAnnotationPrefix+matchID]
	if !ok {
		return nil, false
	}
	return strings.Split(v, ","), true
}

// released gives an allocated room's share of the game server back: one
// room off the rooms counter, its players off the players list. The
// sidecar is retried a few times: a room that is not given back keeps the
// game server from being reused.
func (s *Server) released(matchID string, players []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	retry := func(what string, f func() error) {
		for i := 0; ; i++ {
			err := f()
			if err == nil || errors.Is(err, sdk.ErrNotFound) {
				return
			}
			if i == 4 || ctx.Err() != nil {
				s.log.Error("agones: give back "+what, "room", matchID, "err", err)
				return
			}
			time.Sleep(time.Duration(100<<i) * time.Millisecond)
		}
	}
	retry("room", func() error { _, err := s.cfg.SDK.CounterDiff(ctx, agones.CounterRooms, -1); return err })
	for _, p := range players {
		retry("player "+p, func() error { _, err := s.cfg.SDK.RemoveListValue(ctx, agones.ListPlayers, p); return err })
	}
}

// empty runs when the last room ended: a server that is not shutting down
// goes back to Ready for reuse, or shuts down, as configured.
func (s *Server) empty() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if s.cfg.Reuse {
		err = s.cfg.SDK.Ready(ctx)
		s.log.Info("agones: every room ended; ready again for reuse")
	} else {
		err = s.cfg.SDK.Shutdown(ctx)
		s.log.Info("agones: every room ended; shutting down")
	}
	if err != nil {
		s.log.Error("agones: after the last room", "err", err)
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

func allowed(players []string, p string) bool { return players == nil || slices.Contains(players, p) }
