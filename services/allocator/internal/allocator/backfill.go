package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// Backfill, the allocator's part. A room that has free seats asks for
// players where its game server shows its state: in /status on the local
// backend, in an annotation of its GameServer on Agones (play.Backfill,
// agones.BackfillAnnotation). The allocator, which watches the game
// servers anyway, turns each request into an events.Backfill for the
// shard that formed the room's match (RequestBackfills): the room's
// match, from the matches bucket, gives the mode, the shard, the skill
// and the attributes the request is filled by. The matcher answers with a
// match that has Match.Backfill set; the allocator gives it no new
// server but the room's (its allocation record), signs join tokens for
// the room on the room's teams, and tells the players where to go
// (assigner.handleBackfill). If the room is gone by then, its tickets are
// queued again with their wait: a player is never lost to a room that
// ended.

// What a game server shows is its own word, and a server may be hostile:
// it may show any match id, any seats, and a new Ask on every poll. So a
// request counts only from the server the room's allocation record names
// (rooms.own: not another server's room, nor a room with no record), for
// no more seats than the room has (within: its teams, each its team's
// seats), and a room's new Ask is published at most once per
// BackfillConfig.MinInterval (requester.poll; backfill_request.go). What
// a server's requests cost is bounded per server, whatever it says of
// itself: its backend shows at most MaxRoomsShown of them, one per room;
// requester.poll looks up (a read of the room's records) at most
// looksPerServer of them a poll, and passes over a server once it has
// been refused refusedPerServer rooms within askAgain.

// ShownBackfill is a room's request as a game server shows it, with the
// server that shows it: only the server a room runs on may ask for it.
type ShownBackfill struct {
	play.Backfill
	// Server is the game server that shows the request: its Name and
	// Cluster, as an allocation of it says them (the rest may be unset).
	Server Server
	// Seated are players the server says hold a seat, as of the moment
	// it shows the request (at most play.MaxSeated): those of the
	// request's room, or of any room of the server (Agones' players
	// List). A promise's seat is released once its player is seated
	// (promise.held).
	Seated []string
}

// MaxRoomsShown is the most requests a backend shows of one game server
// (BackfillSource): the most rooms a server may host, Agones' limit on a
// List and so on the rooms List, and the chart's maximum of
// gameServers.roomsPerServer (deploy/helm values.schema.json). A server
// that shows more says more than it can host; the rest are dropped.
const MaxRoomsShown = agones.MaxListCapacity

// ShownRoom is a room a game server shows open, with the server that
// shows it: its records are kept while it shows (keeper).
type ShownRoom struct {
	MatchID string
	Server  Server
}

// BackfillSource lists the rooms on a backend's game servers and the
// backfill requests of those asking for players.
type BackfillSource interface {
	// Rooms are the rooms open on the servers, each with the server that
	// shows it, as of the backend's last look, at most MaxRoomsShown per
	// server; known as for Backfills. A server's word too: the keeper
	// keeps the records only of the rooms they name it the server of.
	Rooms() (rooms []ShownRoom, known bool)
	// Backfills are the requests of the rooms asking for players, as of
	// the backend's last look at its servers, each with the server that
	// shows it, at most one per room a server hosts (as far as the
	// backend knows) and at most MaxRoomsShown per server; known is
	// false until it has looked once (no request is published, and no
	// room counts as gone, on a view that does not exist yet).
	Backfills() (reqs []ShownBackfill, known bool)
	// RoomBackfills are the requests for room roomID among Backfills
	// (from every server that shows one): what a fill of the room is
	// checked against, without reading every server's.
	//
	// Both are read, never written: a backend may hand the same Seats to
	// every call.
	RoomBackfills(roomID string) (reqs []ShownBackfill, known bool)
}

// errRoomGone: the room a backfill match fills is no longer there (no
// allocation record, or it asks for no one now), so its players are
// queued again.
var errRoomGone = errors.New("the room to fill is gone")

// errRoomsUnknown is retried: the backend has not seen its servers yet.
var errRoomsUnknown = errors.New("the game servers' rooms are not known yet")

// errNotItsRoom: a server asks for a room that is not its own (the room's
// allocation record names another server, or there is none). It is
// refused for askAgain, whatever Ask the server shows for the room.
var errNotItsRoom = errors.New("the server that asks does not run the room")

// errOverShape: a request asks for more seats than its room has (more
// teams, or more seats on a team than a team has). It is never filled.
var errOverShape = errors.New("asks for seats its room does not have")

// rooms reads what the allocator knows of a running room: the match
// formed for it (the matches bucket, written by the matcher), the
// requests of the backend's rooms, and its allocation record (records),
// with the seats promised in it.
type rooms struct {
	// matches is the matchers' bucket; roomMatches the bucket where the
	// refresher copies an open room's match to outlive it (nil in tests
	// of rooms that never outlive it).
	matches, roomMatches jetstream.KeyValue
	src                  BackfillSource
	records              *records
	// turnover and refill are BackfillConfig's: what a room may be sent
	// (rooms.budget).
	turnover int
	refill   time.Duration
}

// openRooms opens the buckets of rooms, whose requests src shows.
func openRooms(ctx context.Context, js jetstream.JetStream, subj events.Subjects, src BackfillSource, recs *records, cfg BackfillConfig) (*rooms, error) {
	matches, err := js.KeyValue(ctx, subj.MatchesBucket())
	if err != nil {
		return nil, fmt.Errorf("matches bucket: %w", err)
	}
	roomMatches, err := js.KeyValue(ctx, subj.RoomMatchesBucket())
	if err != nil {
		return nil, fmt.Errorf("room matches bucket: %w", err)
	}
	return &rooms{matches: matches, roomMatches: roomMatches, src: src, records: recs, turnover: cfg.Turnover, refill: cfg.Refill}, nil
}

// match is the match room roomID was opened for: its copy in the room
// matches bucket (refresher), or, before it is copied, the matches
// bucket's.
func (rs *rooms) match(ctx context.Context, roomID string) (events.Match, error) {
	var e jetstream.KeyValueEntry
	var err error = jetstream.ErrKeyNotFound
	if rs.roomMatches != nil {
		e, err = rs.roomMatches.Get(ctx, roomID)
	}
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		e, err = rs.matches.Get(ctx, roomID)
	}
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return events.Match{}, fmt.Errorf("room %s: no match record: %w", roomID, errRoomGone)
	}
	if err != nil {
		return events.Match{}, fmt.Errorf("room %s: match record: %w", roomID, err)
	}
	return decodeMatch(roomID, e.Value())
}

// decodeMatch reads data, room roomID's match record: errRoomGone when
// it does not read as a match.
func decodeMatch(roomID string, data []byte) (events.Match, error) {
	var m events.Match
	if err := json.Unmarshal(data, &m); err != nil || len(m.Tickets) == 0 {
		return events.Match{}, fmt.Errorf("room %s: unreadable match record: %w", roomID, errRoomGone)
	}
	return m, nil
}

// hosts says whether r, room roomID's allocation record, names srv as
// the room's server (errNotItsRoom when not). The record of a match that
// fills a room (Until set) names the room's server, but is no room.
func (r record) hosts(roomID string, srv Server) error {
	switch {
	case r.Server == nil:
		return fmt.Errorf("room %s has no server: %w", roomID, errNotItsRoom)
	case r.Until != 0:
		return fmt.Errorf("%s fills a room, it is none: %w", roomID, errNotItsRoom)
	case r.Server.Name != srv.Name || r.Server.Cluster != srv.Cluster:
		return fmt.Errorf("room %s runs on %s/%s, not on %s/%s: %w", roomID, r.Server.Cluster, r.Server.Name, srv.Cluster, srv.Name, errNotItsRoom)
	}
	return nil
}

// own is room roomID's allocation record, when it names srv:
// errNotItsRoom (wrapped) when it names another server or there is none.
func (rs *rooms) own(ctx context.Context, roomID string, srv Server) (record, error) {
	r, _, err := rs.records.room(ctx, roomID)
	if errors.Is(err, errRoomGone) {
		return record{}, fmt.Errorf("%w: %w", errNotItsRoom, err)
	}
	if err != nil {
		return record{}, err
	}
	return r, r.hosts(roomID, srv)
}

// roomSeats is the seat, Team left out, of every player of the room m
// opened (RoomOf, roomSeat): its teams, the seats of each (a room opened
// early has more than its match's players: agones.Room.TeamSize), and
// whether it accepts backfill.
func roomSeats(m events.Match) (jointoken.Seat, error) {
	room, err := RoomOf(m)
	if err != nil {
		return jointoken.Seat{}, fmt.Errorf("%w: %w", errRoomGone, err)
	}
	return roomSeat(room), nil
}

// within says whether seats, asked for by room m, fit it: no more teams
// than it has, no more seats on a team than a team has (errOverShape).
func within(m events.Match, seats []int) error {
	shape, err := roomSeats(m)
	if err != nil {
		return err
	}
	teams, size := shape.Teams, shape.TeamSize
	if len(seats) > teams {
		return fmt.Errorf("room %s asks for %v, on %d teams; it has %d: %w", m.MatchID, seats, len(seats), teams, errOverShape)
	}
	for team, n := range seats {
		if n > size {
			return fmt.Errorf("room %s asks for %d seats on team %d; a team has %d: %w", m.MatchID, n, team, size, errOverShape)
		}
	}
	return nil
}

// asking is the request room roomID makes now, if it makes one: as its
// own server shows it (its allocation record names the server), within
// its shape, and what the room may be sent (rooms.budget). Any other is
// errRoomGone: its fill is requeued.
func (rs *rooms) asking(ctx context.Context, roomID string) (ShownBackfill, budget, error) {
	if rs.src == nil {
		return ShownBackfill{}, budget{}, fmt.Errorf("room %s: this backend shows no rooms: %w", roomID, errRoomGone)
	}
	reqs, known := rs.src.RoomBackfills(roomID)
	if !known {
		return ShownBackfill{}, budget{}, errRoomsUnknown
	}
	r, _, err := rs.records.room(ctx, roomID)
	if err != nil {
		return ShownBackfill{}, budget{}, err
	}
	for _, b := range reqs {
		if b.MatchID != roomID || r.hosts(roomID, b.Server) != nil {
			continue
		}
		m, err := rs.match(ctx, roomID)
		if err != nil {
			return ShownBackfill{}, budget{}, err
		}
		if err := within(m, b.Seats); err != nil {
			return ShownBackfill{}, budget{}, fmt.Errorf("%w: %w", errRoomGone, err)
		}
		limit, err := rs.budget(m)
		return b, limit, err
	}
	return ShownBackfill{}, budget{}, fmt.Errorf("room %s asks for no one now: %w", roomID, errRoomGone)
}

// request is the events.Backfill of room request b, published at seen,
// if b is the room's own server's (errNotItsRoom) and within its shape
// (errOverShape): the room's match says the mode, the shard, the skill
// (the mean of its players') and the attributes (its first ticket's) it
// is filled by. Its seats are those the room asks for less those
// promised to players on their way and not seated yet (record.free;
// errSeatsPromised, with when the first promise ends, when none is
// left), and no more than the room may still be backfilled with
// (errRoomSpent when none: rooms.budget); its players are the match's, then those promised
// a seat or sent before.
func (rs *rooms) request(ctx context.Context, b ShownBackfill, seen time.Time) (events.Backfill, time.Time, error) {
	room, err := rs.own(ctx, b.MatchID, b.Server)
	if err != nil {
		return events.Backfill{}, time.Time{}, err
	}
	m, err := rs.match(ctx, b.MatchID)
	if err != nil {
		return events.Backfill{}, time.Time{}, err
	}
	if err := within(m, b.Seats); err != nil {
		return events.Backfill{}, time.Time{}, err
	}
	limit, err := rs.budget(m)
	if err != nil {
		return events.Backfill{}, time.Time{}, err
	}
	room.expire(seen)
	if limit.per > 0 && room.clockless() {
		rs.records.startRefill(ctx, b.MatchID, seen)
	}
	room.refill(seen, limit)
	seats := room.free(b)
	if sum(seats) == 0 && len(room.Promised) > 0 {
		return events.Backfill{}, room.until(), fmt.Errorf("room %s asks for %v: %w", b.MatchID, b.Seats, errSeatsPromised)
	}
	if seats, err = room.spare(b.MatchID, seats, limit); err != nil {
		return events.Backfill{}, time.Time{}, err
	}
	skill, n := 0, 0
	for _, t := range m.Tickets {
		skill += t.Skill * len(t.Players)
		n += len(t.Players)
	}
	req := events.Backfill{
		SchemaVersion: events.SchemaVersion, BackfillID: play.BackfillID(b.MatchID, b.Ask), MatchID: b.MatchID, Ask: b.Ask,
		Mode: m.Mode, Region: m.Region, Tier: m.Tier, Skill: skill / max(n, 1), Seats: seats,
		Attributes: m.Tickets[0].Attributes, Players: roomPlayers(m.Players(), room.players()), CreatedAt: seen.UTC(),
	}
	return req, time.Time{}, req.Validate()
}

// roomPlayers are the room's match's players, then those sent to it,
// each once, at most events.MaxBackfillPlayers.
func roomPlayers(lists ...[]string) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range lists {
		for _, p := range l {
			if !seen[p] && len(out) < events.MaxBackfillPlayers {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// roomServer is the record of a match m that fills a room
// (records.place's find): the room's server, from its allocation
// record, and when the tokens of m's players expire. The room must
// still make the request m fills (as its own server shows it, with who
// is seated there), and ask for as many players on each team as m
// brings there on top of those promised to other matches and not
// seated yet (records.promise), which m's are then promised too.
func (as *assigner) roomServer(ctx context.Context, m events.Match) (record, error) {
	roomID := m.Backfill.MatchID
	b, limit, err := as.rooms.asking(ctx, roomID)
	if err != nil {
		return record{}, err
	}
	// Only the room's current request may be filled: an older one (the
	// room asked again after a seat changed, or after -backfill-reask) may
	// have been filled already, and filling both would send two players to
	// one seat.
	if asks := play.BackfillID(roomID, b.Ask); m.Backfill.BackfillID != asks {
		return record{}, fmt.Errorf("room %s now asks as %s, not %s: %w", roomID, asks, m.Backfill.BackfillID, errRoomGone)
	}
	return as.records.promise(ctx, roomID, m, b, limit, as.now().Add(as.tokenTTL))
}
