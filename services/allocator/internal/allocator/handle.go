package allocator

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// assigner gives one match its server and tells its players where to go.
type assigner struct {
	records *records
	// rooms and requeue serve a match that fills a running room
	// (backfill.go): the room's match and requests, and the requeue of
	// its tickets when the room is gone.
	rooms    *rooms
	requeue  func(ctx context.Context, m events.Match, reason error) error
	signer   *jointoken.Signer
	pub      *events.Publisher
	met      *metrics
	tokenTTL time.Duration
	log      *slog.Logger
	now      func() time.Time
}

// handle allocates one match; a match that fills a running room
// (Match.Backfill) is sent to that room instead (handleBackfill). A
// returned error is retried by the middleware unless it is permanent
// (ErrPermanent: a match that does not decode or that no room can seat
// (RoomOf), or one whose record says it failed before).
func (as *assigner) handle(msg *message.Message) error {
	m, err := events.DecodeMatch(msg.Payload)
	if err != nil {
		return Permanent(err)
	}
	ctx := events.WithMeta(msg.Context(), events.Meta{CorrelationID: middleware.MessageCorrelationID(msg), TraceParent: msg.Metadata.Get(events.HeaderTraceParent)})
	if m.Backfill != nil {
		return as.handleBackfill(ctx, m)
	}
	room, err := RoomOf(m) // before a server is taken for a match no room can seat
	if err != nil {
		return err
	}
	start := as.now()
	srv, reused, err := as.records.allocate(ctx, m)
	if err != nil {
		return err
	}
	as.met.latency.Observe(as.now().Sub(start).Seconds())
	if reused {
		as.met.outcomes.WithLabelValues("reused").Inc()
	} else {
		as.met.outcomes.WithLabelValues("assigned").Inc()
	}
	rs, err := as.assignments(m, room, srv)
	if err != nil {
		return err
	}
	if err := as.pub.Results(ctx, rs); err != nil { // all at once: one round trip
		return fmt.Errorf("match %s: %w", m.MatchID, err)
	}
	as.log.Info("match assigned", "match_id", m.MatchID, "server", srv.Name, "players", len(m.Players()), "correlation_id", middleware.MessageCorrelationID(msg))
	return nil
}

// assignments are the "assigned" results of m's players on srv, each with
// its own join token, which seats the player in room (m's, RoomOf).
func (as *assigner) assignments(m events.Match, room agones.Room, srv Server) ([]events.Result, error) {
	seat := seats(room)
	return as.assign(m, m.MatchID, srv, as.now().Add(as.tokenTTL), func(_ events.MatchTicket, p string) jointoken.Seat { return seat[p] })
}

// assign is the "assigned" result of each player of m on srv, with a
// join token for room roomID (m's own, or the room m fills) that seats
// the player as seatOf says and expires at expires.
func (as *assigner) assign(m events.Match, roomID string, srv Server, expires time.Time, seatOf func(t events.MatchTicket, player string) jointoken.Seat) ([]events.Result, error) {
	var rs []events.Result
	for _, t := range m.Tickets {
		for _, p := range t.Players {
			token, err := as.signer.Sign(jointoken.Grant{MatchID: roomID, PlayerID: p, Expires: expires, Seat: seatOf(t, p)})
			if err != nil {
				return nil, fmt.Errorf("match %s: %w", m.MatchID, err)
			}
			a := &events.Assignment{
				Server: srv.Name, Address: srv.Address, Port: srv.Port,
				URL:  playURL(srv, roomID, token),
				Room: roomID, JoinToken: token, MatchID: m.MatchID,
			}
			rs = append(rs, events.Result{TicketID: t.TicketID, PlayerID: p, Status: events.StatusAssigned, MatchID: m.MatchID, Assignment: a})
		}
	}
	return rs, nil
}

// playURL is the page a player opens; the game server serves it.
func playURL(s Server, matchID, token string) string {
	return play.URL("http://"+s.Address+":"+strconv.Itoa(s.Port), matchID, token)
}
