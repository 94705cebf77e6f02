package allocator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
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
//
// Each attempt is an "allocate" span, child of the match's (the
// traceparent it was published with); its players' play URLs carry it
// to the game server's join (play.ParamTrace).
func (as *assigner) handle(msg *message.Message) (err error) {
	m, err := events.DecodeMatch(msg.Payload)
	if err != nil {
		return Permanent(err)
	}
	ctx := withDelivery(events.WithMeta(msg.Context(), metaOf(msg)), msg)
	ctx, span := tracing.Start(ctx, tracing.SpanAllocate, trace.WithAttributes(attribute.String(tracing.AttrMatchID, m.MatchID)))
	defer func() { tracing.End(span, err) }()
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
	outcome := "assigned"
	if reused {
		outcome = "reused"
	}
	if as.count(ctx, outcome) {
		as.met.latency.Observe(as.now().Sub(start).Seconds())
	}
	rs, err := as.assignments(ctx, m, room, srv)
	if err != nil {
		return err
	}
	if err := publishResults(ctx, as.pub, rs); err != nil { // all at once: one round trip
		return fmt.Errorf("match %s: %w", m.MatchID, err)
	}
	as.log.Info("match assigned", "match_id", m.MatchID, "server", srv.Name, "players", len(m.Players()), "correlation_id", middleware.MessageCorrelationID(msg))
	return nil
}

// publishResults publishes rs with pub, waiting for their acks at most
// events.ResultsCallTimeout: an assignment's, a failure's and a fill's.
func publishResults(ctx context.Context, pub *events.Publisher, rs []events.Result) error {
	ctx, cancel := context.WithTimeout(ctx, events.ResultsCallTimeout)
	defer cancel()
	return pub.Results(ctx, rs)
}

// assignments are the "assigned" results of m's players on srv, each with
// its own join token, which seats the player in room (m's, RoomOf).
func (as *assigner) assignments(ctx context.Context, m events.Match, room agones.Room, srv Server) ([]events.Result, error) {
	seat := seats(room)
	return as.assign(ctx, m, m.MatchID, srv, as.now().Add(as.tokenTTL), func(_ events.MatchTicket, p string) jointoken.Seat { return seat[p] })
}

// assign is the "assigned" result of each player of m on srv, with a
// join token for room roomID (m's own, or the room m fills) that seats
// the player as seatOf says and expires at expires. Its play URLs carry
// the trace context of ctx (play.ParamTrace).
func (as *assigner) assign(ctx context.Context, m events.Match, roomID string, srv Server, expires time.Time, seatOf func(t events.MatchTicket, player string) jointoken.Seat) ([]events.Result, error) {
	var rs []events.Result
	for _, t := range m.Tickets {
		for _, p := range t.Players {
			token, err := as.signer.Sign(jointoken.Grant{MatchID: roomID, PlayerID: p, Expires: expires, Seat: seatOf(t, p)})
			if err != nil {
				return nil, fmt.Errorf("match %s: %w", m.MatchID, err)
			}
			a := &events.Assignment{
				Server: srv.Name, Address: srv.Address, Port: srv.Port,
				URL:  playURL(srv, play.Join{MatchID: roomID, Token: token, Trace: events.MetaFrom(ctx).TraceParent}),
				Room: roomID, JoinToken: token, MatchID: m.MatchID,
			}
			rs = append(rs, events.Result{TicketID: t.TicketID, PlayerID: p, Status: events.StatusAssigned, MatchID: m.MatchID, Assignment: a})
		}
	}
	return rs, nil
}

// playURL is the page a player opens; the game server serves it. An
// IPv6 address goes in brackets (JoinHostPort): written bare, the URL is
// no URL, and every client refuses it (ticketapi.ValidAssignmentURL).
func playURL(s Server, j play.Join) string {
	return j.PageURL("http://" + net.JoinHostPort(s.Address, strconv.Itoa(s.Port)))
}

// handleBackfill assigns a match that fills room m.Backfill.MatchID: no
// new server, but the room's (its allocation record), recorded as m's
// own with the seats promised to m (roomServer) and the room's shape,
// so that a repeat of m gets the same; join tokens for the room, each
// seating its player on the room's team the match gives it
// (MatchTicket.Team is the room's), with the room's shape, expiring with
// the promise; and the "assigned" results. A room that is gone, or has
// no seat free (and not promised) on a team m fills, gets no one: m's
// tickets are queued again with their wait.
//
// A repeat of m placed before (its results published, its ack lost) is
// told the same again from its record when the room's match record is
// gone since (the room closed): it cannot be queued again (its record
// has a server: markFailed refuses), and would be nakked forever.
func (as *assigner) handleBackfill(ctx context.Context, m events.Match) error {
	roomID := m.Backfill.MatchID
	shape, err := as.roomShape(ctx, roomID)
	if errors.Is(err, errRoomGone) {
		rec, placed, perr := as.records.placed(ctx, m.MatchID)
		if perr != nil {
			return perr
		}
		if placed && rec.Seat != nil {
			as.count(ctx, "reused")
			return as.tellFill(ctx, m, rec, *rec.Seat)
		}
	}
	var rec record
	var reused bool
	if err == nil {
		rec, reused, err = as.records.place(ctx, m, func(ctx context.Context, m events.Match) (record, error) {
			r, err := as.roomServer(ctx, m)
			r.Seat = &shape
			return r, err
		})
	}
	if errors.Is(err, errRoomGone) {
		if rerr := as.requeue(ctx, m, err); rerr != nil {
			return fmt.Errorf("requeue after %w: %w", err, rerr)
		}
		as.log.Warn("room to fill is gone or its seats are taken; match's tickets requeued with their wait", "match_id", m.MatchID, "room", roomID, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	if reused {
		as.count(ctx, "reused")
	} else {
		as.count(ctx, "backfilled")
	}
	return as.tellFill(ctx, m, rec, shape)
}

// count counts outcome once per delivery (delivery.countOnce), and says
// whether it did.
func (as *assigner) count(ctx context.Context, outcome string) bool {
	if !deliveryFrom(ctx).countOnce() {
		return false
	}
	as.met.outcomes.WithLabelValues(outcome).Inc()
	return true
}

// tellFill tells the players of m, which fills a room and has rec for
// its record, where to go: the room's server, with join tokens for the
// room in its shape, each on its ticket's team, expiring with the
// promise of their seats (rec.Until).
func (as *assigner) tellFill(ctx context.Context, m events.Match, rec record, shape jointoken.Seat) error {
	roomID := m.Backfill.MatchID
	srv := *rec.Server
	rs, err := as.assign(ctx, m, roomID, srv, time.UnixMilli(rec.Until), func(t events.MatchTicket, _ string) jointoken.Seat {
		s := shape
		s.Team = t.Team
		return s
	})
	if err != nil {
		return Permanent(err) // a team the room does not have: no retry seats it
	}
	if err := publishResults(ctx, as.pub, rs); err != nil {
		return fmt.Errorf("match %s: %w", m.MatchID, err)
	}
	as.log.Info("match assigned to a running room", "match_id", m.MatchID, "room", roomID, "server", srv.Name, "players", len(m.Players()))
	return nil
}

// roomShape is the seat of room roomID with Team left out: its teams and
// team size, and that it accepts backfill, as the room's match made it
// (roomSeats: a room that started early has teams its match left empty).
func (as *assigner) roomShape(ctx context.Context, roomID string) (jointoken.Seat, error) {
	rm, err := as.rooms.match(ctx, roomID)
	if err != nil {
		return jointoken.Seat{}, err
	}
	return roomSeats(rm)
}

// metaOf is the flow msg came with (its correlation id and trace
// context), well formed only.
func metaOf(msg *message.Message) events.Meta {
	return events.Meta{CorrelationID: middleware.MessageCorrelationID(msg), TraceParent: msg.Metadata.Get(events.HeaderTraceParent)}.Bounded()
}
