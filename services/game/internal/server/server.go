// Package server is the game server: it hosts many rock-paper-scissors
// rooms, each keyed by its match id, and admits to a room only players
// whose join token the allocator signed for that room, each on their
// team (seating.go: from the allocation under Agones, else from the
// tokens' seats). Under Agones the rooms live are those in the
// GameServer's rooms List (agones.go; the contract is pkg/agones/room.go),
// the keeper gives ended rooms back and sends an empty server back to
// Ready (keeper.go), and a server whose GameServer's annotations, which
// Agones never removes, near Kubernetes' 256 KiB retires: it labels
// itself so that no allocation picks it, and shuts down after its last
// room (retire.go). A room whose mode accepts backfill frees the seat of
// a player gone for good during its game and asks for another
// (backfill.go). A join (join.go) is a "join" span (pkg/tracing), child
// of the allocation whose traceparent its URL carries once its token is
// checked (a refused one is only linked to it).
//
// Concurrency: each room is owned by one goroutine (room.run) that holds
// the game and the room's connections; WebSocket readers send it events,
// and it writes to players through each connection's send channel, drained
// by that connection's writer goroutine. One goroutine, the keeper, writes
// the Agones Lists and state after the first Ready. The server's mutex
// guards the maps of open and ended rooms and a few flags; no sidecar
// call is made under it.
package server

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/singleflight"

	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

//go:embed page/*
var page embed.FS

// Verifier checks a join token (*jointoken.Keys: the public keys whose
// private keys the allocator signs with).
type Verifier interface {
	Verify(token string, now time.Time) (jointoken.Grant, error)
}

var _ Verifier = (*jointoken.Keys)(nil)

// Server hosts rooms.
type Server struct {
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader
	pageFS   fs.FS
	now      func() time.Time
	reg      *prometheus.Registry
	met      metrics
	// retryWait is the first pause between tries of a sidecar call that
	// gives a room back or labels the server retiring; each next pause
	// doubles it.
	retryWait time.Duration
	// after starts the rooms' re-ask timers (timers.go): time.AfterFunc,
	// or a test's clock (set under mu before a room opens).
	after afterFunc

	mu       sync.Mutex
	draining bool
	rooms    map[string]*room     // by match id
	ended    map[string]time.Time // match ids of rooms that finished, and when; their tokens no longer admit
	wg       sync.WaitGroup
	// retiring: the GameServer's annotations near Kubernetes' limit, or
	// it is labelled so; labelling: its label is being set or is set
	// (retire.go).
	retiring, labelling bool
	// requests are the backfill requests of the open rooms asking now,
	// and holders who holds the seats of each open room that accepts
	// backfill, by match id, as their rooms hand them over
	// (seatsChanged; backfill.go).
	requests map[string]play.Backfill
	holders  map[string][]string
	// notHere: matches a join's read of the GameServer did not find
	// allocated here, and when (notHereFor); reads collapses the reads
	// under way into one (agones.go).
	notHere map[string]time.Time
	reads   singleflight.Group
	// reopenedAll: the live rooms of the GameServer as first read were
	// opened (liveRooms), so an expired token no longer reads it (room).
	reopenedAll atomic.Bool
	// seats are the kept seats of each open room (agones.EncodeSeats),
	// as its room handed them over; the keeper writes them (resume.go).
	seats map[string]string

	// kick wakes the keeper (keeper.go): a room ended, or the watch saw
	// the GameServer change. Capacity 1: kicks while it works make one
	// more pass, not one each.
	kick chan struct{}
	// keepMu serialises the keeper's passes with Drain's Shutdown.
	keepMu sync.Mutex

	// onEvent, when set (tests only, before the first join), sees every
	// event a room handles, in the room's goroutine: a test injects a
	// panic into one room with it.
	onEvent func(matchID string, ev event)
}

// New returns a game server.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	cfg.setDefaults()
	if cfg.JoinKeys == nil {
		return nil, errors.New("no join token keys")
	}
	if most := annotationLimit - largestRoomAnnotation; cfg.RetireAnnotationBytes > most {
		return nil, fmt.Errorf("retire-annotation-bytes %d: at most %d, or the largest room's annotation (%d bytes) may not fit under Kubernetes' %d",
			cfg.RetireAnnotationBytes, most, largestRoomAnnotation, annotationLimit)
	}
	sub, err := fs.Sub(page, "page")
	if err != nil {
		return nil, fmt.Errorf("embedded page: %w", err)
	}
	reg := prometheus.NewRegistry()
	met := metrics{
		rooms: prometheus.NewGauge(prometheus.GaugeOpts{Name: "quickmatch_game_rooms", Help: "Rooms open now."}),
		roomsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quickmatch_game_rooms_ended_total", Help: "Rooms ended, by how: won, forfeit, idle, abandoned, shutdown, panic.",
		}, []string{"outcome"}),
		players: prometheus.NewGauge(prometheus.GaugeOpts{Name: "quickmatch_game_players_connected", Help: "Players connected now."}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quickmatch_game_room_panics_total", Help: "Rooms ended by a panic in their own code (a bug; the log has the stack); the server and its other rooms went on.",
		}),
	}
	reg.MustRegister(met.rooms, met.roomsEnded, met.players, met.panics, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Server{
		cfg: cfg, log: log, pageFS: sub, now: time.Now, after: realAfter, reg: reg, met: met, retryWait: 100 * time.Millisecond,
		upgrader: websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024},
		rooms:    map[string]*room{}, ended: map[string]time.Time{}, notHere: map[string]time.Time{}, seats: map[string]string{}, kick: make(chan struct{}, 1),
		requests: map[string]play.Backfill{}, holders: map[string][]string{},
	}, nil
}

// Rooms is the number of rooms open now.
func (s *Server) Rooms() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

type metrics struct {
	rooms      prometheus.Gauge
	roomsEnded *prometheus.CounterVec
	players    prometheus.Gauge
	panics     prometheus.Counter
}

// Status reports the rooms open now (their count and match ids), the most allowed and the backfill
// requests of the rooms asking for players (none while draining: a room
// that may be ended at the drain's deadline takes nobody new), sorted by
// match id: the body of /status, which the allocator's local backend
// reads.
func (s *Server) Status() play.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := play.Status{Rooms: len(s.rooms), MaxRooms: s.cfg.MaxRooms, Open: slices.Sorted(maps.Keys(s.rooms))}
	if !s.draining {
		st.Backfill, st.Seated = s.shownBackfill()
	}
	return st
}

var (
	errRoomEnded   = errors.New("room has ended")
	errFull        = errors.New("server is full")
	errDraining    = errors.New("server is shutting down")
	errNotAssigned = errors.New("this match was not allocated to this server")
)

// room returns the open room of g's match for a join. Without Agones a
// room opens on its first valid join, seated as its token says; with
// Agones only a room live here (in the rooms List) opens, seated as its
// allocation says. A join whose token has expired (resumeOnly) only
// finds an open room.
func (s *Server) room(ctx context.Context, g jointoken.Grant, resumeOnly bool) (*room, error) {
	s.mu.Lock()
	rm, ok := s.rooms[g.MatchID]
	_, ended := s.ended[g.MatchID]
	s.mu.Unlock()
	switch {
	case ok:
		return rm, nil
	case ended:
		return nil, errRoomEnded
	case resumeOnly && (s.cfg.SDK == nil || s.reopenedAll.Load()):
		// Once the rooms the last process left are open here, a room
		// that is not is ended or not here: no read for an expired token.
		return nil, jointoken.ErrExpired
	case s.cfg.SDK == nil:
		return s.open(g.MatchID, tokenSeating(g.Seat))
	}
	// The join beat the watch to the allocation, or to a room a process
	// restarted in place reopens (a player coming back with its resume
	// key and an expired token; the room says whether it may).
	st, ok := s.allocatedRoom(ctx, g.MatchID)
	switch {
	case !ok && resumeOnly:
		return nil, jointoken.ErrExpired
	case !ok:
		return nil, errNotAssigned
	}
	return s.open(g.MatchID, st)
}

// open opens the room of match matchID, seated as st says. Opening an
// open room returns it.
func (s *Server) open(matchID string, st seating) (*room, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rm, ok := s.rooms[matchID]; ok {
		return rm, nil
	}
	if _, ok := s.ended[matchID]; ok {
		return nil, errRoomEnded
	}
	if s.draining {
		return nil, errDraining
	}
	if len(s.rooms) >= s.cfg.MaxRooms {
		return nil, errFull
	}
	rm := newRoom(matchID, st, s.cfg, s.log.With("room", matchID))
	rm.onEvent = s.onEvent
	if st.keptErr != nil {
		s.log.Warn("agones: the room's kept seats cannot be read; its players come back with their tokens", "room", matchID, "err", st.keptErr)
	}
	if s.cfg.SDK != nil {
		// Kept from the start: the keeper must not clear what a process
		// before this one kept (seats, players let go) before its
		// players are back.
		rm.keep = s.keysChanged
		s.seats[matchID] = rm.keptValue()
	}
	if st.acceptsBackfill {
		// Before the room runs: the keeper must never see it without
		// its holders and take a seat's player for one the room let go.
		rm.backfill.publish, rm.backfill.after = s.seatsChanged, s.after
		s.holders[matchID] = slices.Concat(rm.roster...)
	}
	s.rooms[matchID] = rm
	s.met.rooms.Inc()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.roomEnded(rm, rm.run())
	}()
	return rm, nil
}

// roomEnded follows a room that has run to its end: it is counted by
// outcome, and its match id is remembered so that its tokens no longer
// admit and Agones' rooms List does not reopen it. Under Agones the
// keeper then gives its share of the game server back (keeper.go) and
// dates the memory once it has: a room not yet given back is never
// forgotten.
func (s *Server) roomEnded(rm *room, outcome string) {
	if outcome == outcomePanic {
		// Also counted as rooms_ended{outcome="panic"}; both stay, for
		// the dashboards and alerts that read either.
		s.met.panics.Inc()
	}
	s.met.roomsEnded.WithLabelValues(outcome).Inc()
	s.met.rooms.Dec()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rooms, rm.matchID)
	delete(s.requests, rm.matchID)
	delete(s.holders, rm.matchID)
	delete(s.seats, rm.matchID)
	now := s.now()
	s.forget(now)
	if s.cfg.SDK == nil {
		// Refused for EndedMemory, and for as long as a token it
		// admitted is valid: without Agones nothing else keeps that
		// token from opening the room afresh (-join-token-ttl has no
		// bound). The room has stopped: its fields are this goroutine's.
		s.ended[rm.matchID] = now
		if at := rm.tokensUntil.Add(-s.cfg.EndedMemory); at.After(now) {
			s.ended[rm.matchID] = at
		}
		return
	}
	s.ended[rm.matchID] = time.Time{}
	s.nudge()
}

// forget drops the ended rooms older than EndedMemory (s.mu held): their
// tokens have expired. An id still in Agones' rooms List then would open
// again, which is why a room is dated only once it has left that List,
// as the keeper read it. A GameServer the watch streamed before that
// read and handles after the memory still lists the id, so the memory
// must also outlast the watch's lag: an hour against milliseconds
// (FuzzRoomLifecycle, at 1ns, waits for its watch instead).
func (s *Server) forget(now time.Time) {
	for old, at := range s.ended {
		if !at.IsZero() && now.Sub(at) > s.cfg.EndedMemory {
			delete(s.ended, old)
		}
	}
}

// message is every server-to-client message.
type message struct {
	Type    string `json:"type"`
	MatchID string `json:"room,omitempty"` // the welcome's room: its match id
	You     string `json:"you,omitempty"`
	// Players are the seated players, team by team (start, resume,
	// waiting), and Teams the same by team; Seats how many players the
	// game starts with (waiting: room.starts).
	Players []string   `json:"players,omitempty"`
	Teams   [][]string `json:"teams,omitempty"`
	Seats   int        `json:"seats,omitempty"`
	// Player is who moved (moved), dropped (player_left), is back on a
	// new connection (player_back) or is gone for good, their seat freed
	// for backfill (player_gone).
	Player string `json:"player,omitempty"`
	BestOf int    `json:"best_of,omitempty"`
	Round  any    `json:"round,omitempty"`
	// Score is each player's: rounds their team took, or in a
	// free-for-all their points (rps.Game.Score).
	Score map[string]int `json:"score,omitempty"`
	// Winners won the game (over): a team, or free-for-all leaders tied;
	// Winner is the one winner when there is one.
	Winners  []string `json:"winners,omitempty"`
	Winner   string   `json:"winner,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Error    string   `json:"error,omitempty"`
	GraceSec int      `json:"grace_seconds,omitempty"`
	// FreeForAll says the game is a free-for-all (start, resume,
	// player_gone): its teams may show a seat a player left.
	FreeForAll bool `json:"free_for_all,omitempty"`
	// Resume, in the welcome message, is the key that lets this player
	// come back (?resume=) once its join token has been used.
	Resume string `json:"resume,omitempty"`
}

// clientMessage is every client-to-server message.
type clientMessage struct {
	Type string `json:"type"`
	Move string `json:"move"`
}

func encode(m message) []byte {
	b, _ := json.Marshal(m) // message holds only encodable fields
	return b
}
