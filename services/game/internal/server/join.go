package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/tracing"
)

// serveWS joins a player to their match's room, then serves them until
// they leave.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	rm, c, ok := s.join(w, r)
	if !ok {
		return
	}
	defer s.met.players.Dec() // join counted the player in
	// The room has received c's join: from now on it alone closes c.send
	// (it may have already, refusing c), and writeLoop drains what it
	// queued there before the close.
	go c.writeLoop()
	c.readLoop(rm)
}

// join checks a player's join token and seats them in the room: ok is
// false if it refused them (answered with the reason) or the room had
// ended. It is the "join" span (joinSpan), from the request to the room
// receiving the player: not the game that follows. The span names the
// room by its match id (tracing.AttrMatchID) only once the token has
// vouched for it, and from the grant: what an unauthenticated request
// sent is never copied into a span.
func (s *Server) join(w http.ResponseWriter, r *http.Request) (rm *room, c *client, ok bool) {
	began := time.Now()
	join := play.ParseJoin(r.URL.Query())
	grant, err := s.cfg.JoinKeys.Verify(join.Token, s.now())
	// An expired token is still signed for its room and player: with a
	// resume key it may take back that player's seat in an open room (the
	// room checks the key), so a game that outlasts the token's life can
	// still be resumed. It opens no room and takes no new seat.
	resumeOnly := errors.Is(err, jointoken.ErrExpired) && agones.WellFormedKey(join.Resume) // whichever room gave it
	if resumeOnly {
		err = nil
	}
	if err == nil && grant.MatchID != join.MatchID {
		err = errors.New("token is for another room")
	}
	ctx, span := joinSpan(r.Context(), join.Trace, began, err == nil)
	var refused error
	defer func() { tracing.End(span, refused) }()
	refuse := func(code int, err error) {
		refused = err
		http.Error(w, "join refused: "+err.Error(), code)
	}
	if err != nil {
		refuse(http.StatusForbidden, err)
		return nil, nil, false
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.String(tracing.AttrMatchID, grant.MatchID))
	}
	rm, err = s.room(ctx, grant, resumeOnly)
	switch {
	case errors.Is(err, errFull) || errors.Is(err, errDraining):
		refuse(http.StatusServiceUnavailable, err)
		return nil, nil, false
	case errors.Is(err, errNotAssigned) || errors.Is(err, jointoken.ErrExpired):
		refuse(http.StatusForbidden, err)
		return nil, nil, false
	case err != nil:
		refuse(http.StatusGone, err)
		return nil, nil, false
	}
	team, err := rm.seating.team(grant)
	if err != nil {
		refuse(http.StatusForbidden, err)
		return nil, nil, false
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has answered the client already; nothing more to do.
		s.log.Debug("websocket upgrade", "err", err)
		refused = err
		return nil, nil, false
	}
	c = newClient(grant.PlayerID, join.Resume, conn)
	c.team, c.starts, c.resumeOnly, c.expires = team, grant.Seat.Starts, resumeOnly, grant.Expires
	s.met.players.Inc()
	if !rm.send(event{kind: evJoin, client: c}) {
		s.met.players.Dec()
		c.refuse("room has ended")
		refused = errRoomEnded
		return nil, nil, false
	}
	return rm, c, true
}

// joinSpan starts the "join" span at began. A join whose token vouched
// for it (vouched) is a child of the allocation that sent the player,
// the span its URL's traceparent names (play.ParamTrace). Any other
// starts a trace of its own, linked to the span it named: anyone may
// send any traceparent, and a span that took it for its parent before
// the token was checked let anyone hang spans on any trace and, under a
// parent-based sampler, have them sampled or not.
func joinSpan(ctx context.Context, traceparent string, began time.Time, vouched bool) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(began)}
	if vouched {
		return tracing.Start(tracing.Remote(ctx, traceparent), tracing.SpanJoin, opts...)
	}
	if link, ok := tracing.Link(traceparent); ok {
		opts = append(opts, trace.WithLinks(link))
	}
	return tracing.Start(ctx, tracing.SpanJoin, append(opts, trace.WithNewRoot())...)
}
