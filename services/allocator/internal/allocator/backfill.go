package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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

// BackfillSource lists the backfill requests of the rooms on a backend's
// game servers.
type BackfillSource interface {
	// Backfills are the requests of the rooms asking for players, as of
	// the backend's last look at its servers; known is false until it
	// has looked once (no request is published, and no room counts as
	// gone, on a view that does not exist yet).
	Backfills() (reqs []play.Backfill, known bool)
}

// errRoomGone: the room a backfill match fills is no longer there (no
// allocation record, or it asks for no one now), so its players are
// queued again.
var errRoomGone = errors.New("the room to fill is gone")

// errRoomsUnknown is retried: the backend has not seen its servers yet.
var errRoomsUnknown = errors.New("the game servers' rooms are not known yet")

// rooms reads what the allocator knows of a running room: the match
// formed for it (the matches bucket, written by the matcher), the
// requests of the backend's rooms, and its allocation record (records),
// with the seats promised in it.
type rooms struct {
	matches jetstream.KeyValue
	src     BackfillSource
	records *records
}

// match is the match room roomID was opened for.
func (rs *rooms) match(ctx context.Context, roomID string) (events.Match, error) {
	e, err := rs.matches.Get(ctx, roomID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return events.Match{}, fmt.Errorf("room %s: no match record: %w", roomID, errRoomGone)
	}
	if err != nil {
		return events.Match{}, fmt.Errorf("room %s: match record: %w", roomID, err)
	}
	var m events.Match
	if err := json.Unmarshal(e.Value(), &m); err != nil || len(m.Tickets) == 0 {
		return events.Match{}, fmt.Errorf("room %s: unreadable match record: %w", roomID, errRoomGone)
	}
	return m, nil
}

// asking is the request room roomID makes now, if it makes one.
func (rs *rooms) asking(roomID string) (play.Backfill, error) {
	if rs.src == nil {
		return play.Backfill{}, fmt.Errorf("room %s: this backend shows no rooms: %w", roomID, errRoomGone)
	}
	reqs, known := rs.src.Backfills()
	if !known {
		return play.Backfill{}, errRoomsUnknown
	}
	for _, b := range reqs {
		if b.MatchID == roomID {
			return b, nil
		}
	}
	return play.Backfill{}, fmt.Errorf("room %s asks for no one now: %w", roomID, errRoomGone)
}

// request is the events.Backfill of room request b, published at seen:
// the room's match says the mode, the shard, the skill (the mean of its
// players') and the attributes (its first ticket's) it is filled by. Its
// seats are those the room asks for less those promised to players on
// their way (errSeatsPromised, with when the first promise ends, when
// none is left), and its players are the match's, then those promised a
// seat or sent before.
func (rs *rooms) request(ctx context.Context, b play.Backfill, seen time.Time) (events.Backfill, time.Time, error) {
	m, err := rs.match(ctx, b.MatchID)
	if err != nil {
		return events.Backfill{}, time.Time{}, err
	}
	// A room with no allocation record asks in vain (its fill is
	// requeued); published all the same, as it was before promises.
	room, _, err := rs.records.room(ctx, b.MatchID)
	if err != nil && !errors.Is(err, errRoomGone) {
		return events.Backfill{}, time.Time{}, err
	}
	room.expire(seen)
	seats := room.free(b.Seats)
	if sum(seats) == 0 && len(room.Promised) > 0 {
		return events.Backfill{}, room.until(), fmt.Errorf("room %s asks for %v: %w", b.MatchID, b.Seats, errSeatsPromised)
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

// requester publishes the requests a BackfillSource shows.
type requester struct {
	rooms *rooms
	pub   *events.Publisher
	log   *slog.Logger
	now   func() time.Time
	// due is when each request showing now is looked at again: askAgain
	// after it was published, or found one that cannot be filled (its
	// room has no match record), or when the first promise of its room
	// ends, if every seat it asks for is promised. A request is
	// forgotten once it shows no more.
	due map[string]time.Time
}

// askAgain is how long a request that still shows waits to be published
// again: the duplicate window, after which the stream stores it again. A
// matcher that holds the first copy acks the second; one that let it go
// unfilled after its mode's max wait (nobody fitted) holds it anew, its
// wait starting over, so a room that keeps asking is served by players
// who queue later; one already filled meets the request's claim and lets
// it go.
const askAgain = events.DuplicateWindow

// RequestBackfills publishes, every interval until ctx ends, the
// backfill request of each room src shows asking for players, on the
// backfills subject of the shard that formed the room's match: once when
// it first shows, then every askAgain while it shows. Its id is its
// message id, so it is stored once however many allocators publish it;
// one whose publish fails is tried again at the next interval.
func RequestBackfills(ctx context.Context, js jetstream.JetStream, subj events.Subjects, src BackfillSource, every time.Duration, log *slog.Logger) error {
	kv, err := js.KeyValue(ctx, subj.MatchesBucket())
	if err != nil {
		return fmt.Errorf("matches bucket: %w", err)
	}
	allocs, err := js.KeyValue(ctx, subj.AllocationsBucket())
	if err != nil {
		return fmt.Errorf("allocations bucket: %w", err)
	}
	recs := &records{kv: allocs, log: log, now: time.Now}
	rq := &requester{rooms: &rooms{matches: kv, src: src, records: recs}, pub: events.NewPublisher(js, subj), log: log, now: time.Now,
		due: map[string]time.Time{}}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rq.poll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// poll publishes the requests that show now and are due.
func (rq *requester) poll(ctx context.Context) {
	reqs, known := rq.rooms.src.Backfills()
	if !known {
		return
	}
	now := rq.now()
	showing := make(map[string]bool, len(reqs))
	for _, b := range reqs {
		id := play.BackfillID(b.MatchID, b.Ask)
		showing[id] = true
		if due, ok := rq.due[id]; ok && now.Before(due) {
			continue
		}
		req, promised, err := rq.rooms.request(ctx, b, now)
		if err == nil {
			err = rq.pub.Backfill(ctx, req)
		}
		switch {
		case err == nil:
			rq.due[id] = now.Add(askAgain)
			rq.log.Info("backfill requested", "backfill_id", id, "room", b.MatchID, "seats", req.Seats, "asked", b.Seats, "shard", req.Region+"."+req.Tier)
		case errors.Is(err, errSeatsPromised):
			rq.due[id] = promised
			rq.log.Info("backfill request waits: its seats are promised to players on their way", "backfill_id", id, "until", promised)
		case errors.Is(err, errRoomGone) || errors.Is(err, events.ErrInvalid):
			rq.due[id] = now.Add(askAgain) // said once per askAgain
			rq.log.Warn("backfill request cannot be filled", "backfill_id", id, "err", err)
		case ctx.Err() == nil:
			rq.log.Warn("backfill request; will retry", "backfill_id", id, "err", err)
		}
	}
	for id := range rq.due {
		if !showing[id] {
			delete(rq.due, id)
		}
	}
}

// handleBackfill assigns a match that fills room m.Backfill.MatchID: no
// new server, but the room's (its allocation record), recorded as m's
// own with the seats promised to m (roomServer), so that a repeat of m
// gets the same; join tokens for the room, each seating its player on
// the room's team the match gives it (MatchTicket.Team is the room's),
// with the room's shape, expiring with the promise; and the "assigned"
// results. A room that is gone, or has no seat free (and not promised)
// on a team m fills, gets no one: m's tickets are queued again with
// their wait.
func (as *assigner) handleBackfill(ctx context.Context, m events.Match) error {
	roomID := m.Backfill.MatchID
	shape, err := as.roomShape(ctx, roomID)
	var rec record
	var reused bool
	if err == nil {
		rec, reused, err = as.records.place(ctx, m, as.roomServer)
	}
	if errors.Is(err, errRoomGone) {
		if rerr := as.requeue(ctx, m, err); rerr != nil {
			return fmt.Errorf("requeue after %w: %w", err, rerr)
		}
		as.met.outcomes.WithLabelValues("backfill_requeued").Inc()
		as.log.Warn("room to fill is gone or its seats are taken; match's tickets requeued with their wait", "match_id", m.MatchID, "room", roomID, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	if reused {
		as.met.outcomes.WithLabelValues("reused").Inc()
	} else {
		as.met.outcomes.WithLabelValues("backfilled").Inc()
	}
	srv := *rec.Server
	rs, err := as.assign(m, roomID, srv, time.UnixMilli(rec.Until), func(t events.MatchTicket, _ string) jointoken.Seat {
		s := shape
		s.Team = t.Team
		return s
	})
	if err != nil {
		return Permanent(err) // a team the room does not have: no retry seats it
	}
	if err := as.pub.Results(ctx, rs); err != nil {
		return fmt.Errorf("match %s: %w", m.MatchID, err)
	}
	as.log.Info("match assigned to a running room", "match_id", m.MatchID, "room", roomID, "server", srv.Name, "players", len(m.Players()))
	return nil
}

// roomShape is the seat of room roomID with Team left out: its teams and
// team size, and that it accepts backfill, as the room's match made it.
func (as *assigner) roomShape(ctx context.Context, roomID string) (jointoken.Seat, error) {
	rm, err := as.rooms.match(ctx, roomID)
	if err != nil {
		return jointoken.Seat{}, err
	}
	room, err := RoomOf(rm)
	if err != nil {
		return jointoken.Seat{}, fmt.Errorf("%w: %w", errRoomGone, err)
	}
	return jointoken.Seat{Teams: len(room.Teams), TeamSize: len(room.Teams[0]), Backfill: room.Backfill}, nil
}

// roomServer is the record of a match m that fills a room
// (records.place's find): the room's server, from its allocation
// record, and when the tokens of m's players expire. The room must
// still make the request m fills, and ask for as many players on each
// team as m brings there on top of those promised to other matches
// (records.promise), which m's are then promised too.
func (as *assigner) roomServer(ctx context.Context, m events.Match) (record, error) {
	roomID := m.Backfill.MatchID
	b, err := as.rooms.asking(roomID)
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
	return as.records.promise(ctx, roomID, m, b.Seats, as.now().Add(as.tokenTTL))
}
