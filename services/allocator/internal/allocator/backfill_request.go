package allocator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
)

// BackfillConfig configures RequestBackfills.
type BackfillConfig struct {
	// Every is how often the rooms' requests are looked at: the
	// allocator's -capacity-interval (its pace of reading the game
	// servers, which the requests come from), set by its main, not a
	// flag of its own.
	Every time.Duration
	// MinInterval is how long a room's request waits after the room's
	// last was looked at (published, or refused for its seats): a room
	// that changes its Ask faster is published at that pace, its latest
	// Ask when the interval ends. It bounds what one room, honest or
	// not, costs the allocator and the matcher. Each allocator keeps its
	// own pace.
	MinInterval time.Duration
	// Turnover is how many times its seats a room may be backfilled
	// with at once (turnover.go): a game server that says its seats are
	// free after every promise ends takes no more. The allocator's fills
	// are held to its Config.Backfill's.
	Turnover int
	// Refill is how long a room takes to be given one room's seats back
	// of its Turnover, a player at a time (0: never, a bound on its
	// life): a room that runs for hours with players dropping in is
	// served for as long as it loses no more than its seats each Refill.
	Refill time.Duration
}

// backfillDefaults are the one statement of BackfillConfig's defaults.
var backfillDefaults = BackfillConfig{
	Every: time.Second,
	// A room's seats change as its players leave, seconds apart at the
	// fastest; a request is filled from the pool within a matcher tick.
	MinInterval: 5 * time.Second,
	// Each seat is filled again four times at once, and once more an
	// hour: a 5v5 that loses a player every six minutes is served for
	// good, one that loses one every four for about eight hours, and a
	// compromised server takes four rooms' worth of players for each it
	// is allocated, then a room's worth an hour.
	Turnover: 4,
	Refill:   time.Hour,
}

// RegisterFlags registers MinInterval's flag on fs; Every is the
// caller's (the allocator's -capacity-interval).
func (c *BackfillConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.MinInterval, "backfill-min-interval", backfillDefaults.MinInterval,
		"shortest time between two requests of one room published for the matcher; a room that asks again sooner waits")
	fs.IntVar(&c.Turnover, "backfill-turnover", backfillDefaults.Turnover,
		"most players one room is backfilled with, in multiples of its seats, given back a room's seats each -backfill-refill (a game server that says its seats are free after every promise ends takes no more)")
	fs.DurationVar(&c.Refill, "backfill-refill", backfillDefaults.Refill,
		"how long a room takes to be given back one room's seats of its -backfill-turnover, a player at a time (0: never, a bound on the room's life); shorten it for rooms that run for hours with players dropping in")
}

// setDefaults fills what is unset (zero) of a config built in code; a
// config read from flags is validated first, so that a zero or negative
// flag is refused rather than replaced.
func (c *BackfillConfig) setDefaults() {
	envflag.OrDefault(&c.Every, backfillDefaults.Every)
	envflag.OrDefault(&c.MinInterval, backfillDefaults.MinInterval)
	envflag.OrDefault(&c.Turnover, backfillDefaults.Turnover)
}

// Validate reports every setting that cannot pace the requests: a
// ticker needs a positive Every, and a MinInterval of zero or less
// would let a hostile room be looked at on every poll.
func (c *BackfillConfig) Validate() error {
	var errs []error
	if c.Every <= 0 {
		errs = append(errs, fmt.Errorf("-capacity-interval %s: the pace backfill requests are looked at must be positive", c.Every))
	}
	if c.MinInterval <= 0 {
		errs = append(errs, fmt.Errorf("-backfill-min-interval %s: must be positive", c.MinInterval))
	}
	if c.Turnover <= 0 {
		errs = append(errs, fmt.Errorf("-backfill-turnover %d: must be positive (a room backfilled with no one asks in vain)", c.Turnover))
	}
	if c.Refill < 0 {
		errs = append(errs, fmt.Errorf("-backfill-refill %s: must be 0 (never) or positive", c.Refill))
	}
	return errors.Join(errs...)
}

// Bounds of what one game server's requests cost the requester: they
// are its own word, and a hostile server shows new made-up rooms on
// every poll, each a read of the allocation records on the one
// goroutine that serves every room's requests.
const (
	// looksPerServer is the most requests of one server looked up (its
	// room's records read) in one poll; the rest wait for a later poll,
	// which an honest server's get as those looked at are due later. It
	// caps what a server showing MaxRoomsShown new rooms on every poll
	// delays the other servers' rooms by, at a few milliseconds a poll.
	looksPerServer = 64
	// refusedPerServer is the most refusals of one server remembered
	// (requester.refused): an honest server shows at most MaxRoomsShown
	// rooms, and is refused no more of them within askAgain. One that
	// reaches it is passed over until its oldest refusal ends.
	refusedPerServer = MaxRoomsShown
	// refusedInAll is the most refusals remembered for all servers; past
	// it a refusal is not remembered, and its room costs a look again at
	// the next poll (within looksPerServer).
	refusedInAll = 100 * refusedPerServer
)

// requester publishes the requests a BackfillSource shows. One goroutine
// (RequestBackfills) owns it.
type requester struct {
	rooms *rooms
	pub   *events.Publisher
	log   *slog.Logger
	now   func() time.Time
	// outcomes counts the requests looked at, by outcome.
	outcomes *prometheus.CounterVec
	// minInterval is BackfillConfig.MinInterval.
	minInterval time.Duration
	// due is when each server's request showing now is looked at again:
	// askAgain after it was published, or found one that cannot be
	// filled (its room has no match record, it asks for seats the room
	// does not have), or, if every seat it asks for is promised, when
	// the first promise of its room ends or after minInterval, whichever
	// is first (a promise's seat is released once its player is seen
	// seated), or when its room's interval ends. A request is forgotten once it shows no more. It is kept
	// per server, so that a server showing another's request delays
	// nothing.
	due map[requestKey]time.Time
	// refused is until when a server's requests for a room that is not
	// its own are passed over, whatever their Ask: refused (and logged)
	// once per askAgain. refusedBy counts them per server; both are
	// bounded (refusedPerServer, refusedInAll).
	refused   map[roomKey]time.Time
	refusedBy map[serverKey]int
	// refusedAll is refusedInAll but for tests.
	refusedAll int
	// last is when each room's request was last looked at (published,
	// or refused for its seats, or unfillable): the room's next look, at
	// a new Ask or at one shown again, waits for minInterval after it.
	// A room whose Ask flips back and forth is looked at no more often
	// than one that asks anew.
	last map[string]time.Time
}

// serverKey names a game server: its cluster and its name.
type serverKey struct{ cluster, name string }

func serverOf(s Server) serverKey { return serverKey{s.Cluster, s.Name} }

// requestKey names one request as a server shows it: its BackfillID.
type requestKey struct {
	server     serverKey
	backfillID string
}

// roomKey names a room as a server shows it, whatever its Ask: its
// match id.
type roomKey struct {
	server  serverKey
	matchID string
}

// askAgain is how long a request that still shows waits to be published
// again: the duplicate window, after which the stream stores it again. A
// matcher that holds the first copy acks the second; one that let it go
// unfilled after its mode's max wait (nobody fitted) holds it anew, its
// wait starting over, so a room that keeps asking is served by players
// who queue later; one already filled meets the request's claim and lets
// it go.
const askAgain = events.DuplicateWindow

// RequestBackfills publishes, every cfg.Every until ctx ends, the
// backfill request of each room src shows asking for players, on the
// backfills subject of the shard that formed the room's match: once when
// it first shows, then every askAgain while it shows; a room's new Ask
// no sooner than cfg.MinInterval after its last. Its id is its message
// id, so it is stored once however many allocators publish it; one whose
// publish fails is tried again at the next interval. Meanwhile it keeps
// the records of the rooms shown open (refresher). reg (may be nil)
// receives its metrics.
func RequestBackfills(ctx context.Context, js jetstream.JetStream, subj events.Subjects, src BackfillSource, cfg BackfillConfig, log *slog.Logger, reg ...prometheus.Registerer) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	// NATS silent at start-up is waited out, as Allocator.Bind does.
	var (
		allocs jetstream.KeyValue
		rs     *rooms
	)
	err := service.Retry(ctx, js.Conn(), log, "bind the buckets of backfill", func(ctx context.Context) error {
		var err error
		if allocs, err = js.KeyValue(ctx, subj.AllocationsBucket()); err != nil {
			return fmt.Errorf("allocations bucket: %w", err)
		}
		rs, err = openRooms(ctx, js, subj, src, &records{kv: allocs, log: log, now: time.Now}, cfg)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting, as at any other time
		}
		return err
	}
	rq := newRequester(rs, events.NewPublisher(js, subj), cfg.MinInterval, log, time.Now)
	rf := newRefresher(rs.matches, rs.roomMatches, allocs, src, log, time.Now)
	for _, r := range reg {
		if r != nil {
			r.MustRegister(rq.outcomes, rf.refreshed)
		}
	}
	t := time.NewTicker(cfg.Every)
	defer t.Stop()
	for {
		rq.poll(ctx)
		rf.pass(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func newRequester(rs *rooms, pub *events.Publisher, minInterval time.Duration, log *slog.Logger, now func() time.Time) *requester {
	return &requester{rooms: rs, pub: pub, log: log, now: now, minInterval: minInterval,
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quickmatch_allocator_backfill_requests_total",
			Help: "Rooms' backfill requests looked at, by outcome: published, waits_interval (the room asked again within -backfill-min-interval), waits_promised (every seat asked for is promised), refused_server (a server asked for a room that is not its own), refused_seats (more seats than the room has), refused_spent (the room was backfilled with -backfill-turnover times its seats), unfillable (no match record of the room, or invalid).",
		}, []string{"outcome"}),
		due: map[requestKey]time.Time{}, refused: map[roomKey]time.Time{}, refusedBy: map[serverKey]int{}, refusedAll: refusedInAll,
		last: map[string]time.Time{}}
}

// poll publishes the requests that show now and are due: one per server
// and room, the first the server shows, at most looksPerServer of a
// server looked up. A match id that is no id (events.CheckID) names no
// room: its request is passed over, as one that does not read.
func (rq *requester) poll(ctx context.Context) {
	reqs, known := rq.rooms.src.Backfills()
	if !known {
		return
	}
	now := rq.now()
	rq.endRefusals(now)
	showing := make(map[requestKey]bool, len(reqs))
	asked := make(map[roomKey]bool, len(reqs))
	roomsShown := make(map[string]bool, len(reqs))
	looks := map[serverKey]int{}
	for _, b := range reqs {
		srv := serverOf(b.Server)
		room := roomKey{srv, b.MatchID}
		if asked[room] || events.CheckID(b.MatchID) != nil {
			continue
		}
		asked[room], roomsShown[b.MatchID] = true, true
		k := requestKey{srv, play.BackfillID(b.MatchID, b.Ask)}
		showing[k] = true
		if looks[srv] >= looksPerServer || rq.refusedBy[srv] >= refusedPerServer || !rq.isDue(k, room, now) {
			continue
		}
		if rq.paced(b.MatchID, k, now) {
			continue
		}
		looks[srv]++
		req, promised, err := rq.rooms.request(ctx, b, now)
		if err == nil {
			err = rq.pub.Backfill(ctx, req)
		}
		rq.record(ctx, b, k, req, promised, err, now)
	}
	rq.forget(showing, roomsShown, now)
}

// isDue says whether request k, of room on its server, is looked at
// now: its server was not refused the room, and it is not waiting.
func (rq *requester) isDue(k requestKey, room roomKey, now time.Time) bool {
	if until, ok := rq.refused[room]; ok && now.Before(until) {
		return false
	}
	due, ok := rq.due[k]
	return !ok || !now.Before(due)
}

// paced says whether room roomID was looked at less than minInterval
// ago: then request k is due when the interval ends.
func (rq *requester) paced(roomID string, k requestKey, now time.Time) bool {
	at, ok := rq.last[roomID]
	if !ok || !now.Before(at.Add(rq.minInterval)) {
		return false
	}
	rq.due[k] = at.Add(rq.minInterval)
	rq.outcomes.WithLabelValues("waits_interval").Inc()
	return true
}

// record counts, logs and schedules the outcome of looking at request b
// (k names it): err is the look's, or its publish's, and promised when
// its room's first promise ends, when every seat it asks for is
// promised.
func (rq *requester) record(ctx context.Context, b ShownBackfill, k requestKey, req events.Backfill, promised time.Time, err error, now time.Time) {
	id := k.backfillID
	switch {
	case err == nil:
		rq.lookedAt(b.MatchID, k, now, "published")
		rq.log.Info("backfill requested", "backfill_id", id, "room", b.MatchID, "seats", req.Seats, "asked", b.Seats, "shard", req.Region+"."+req.Tier)
	case errors.Is(err, errNotItsRoom):
		rq.refuse(roomKey{k.server, b.MatchID}, now, err)
	case errors.Is(err, errOverShape):
		rq.lookedAt(b.MatchID, k, now, "refused_seats")
		rq.log.Warn("backfill request refused: it asks for seats its room does not have", "backfill_id", id, "server", b.Server.Name, "err", err)
	case errors.Is(err, errSeatsPromised):
		// Not a look that paces the room: the request is published when
		// the promise ends, not an interval after; or sooner, once a
		// player promised a seat is seen seated (the players List may
		// show them after the request their join made).
		rq.due[k] = now.Add(rq.minInterval)
		if promised.Before(rq.due[k]) {
			rq.due[k] = promised
		}
		rq.outcomes.WithLabelValues("waits_promised").Inc()
		rq.log.Info("backfill request waits: its seats are promised to players on their way", "backfill_id", id, "until", promised)
	case errors.Is(err, errRoomSpent):
		rq.lookedAt(b.MatchID, k, now, "refused_spent")
		rq.log.Warn("backfill request refused: its room was backfilled with as many players as it may be (-backfill-turnover)", "backfill_id", id, "server", b.Server.Name, "err", err)
	case errors.Is(err, errRoomGone) || errors.Is(err, events.ErrInvalid):
		rq.lookedAt(b.MatchID, k, now, "unfillable") // said once per askAgain
		rq.log.Warn("backfill request cannot be filled", "backfill_id", id, "err", err)
	case ctx.Err() == nil:
		rq.log.Warn("backfill request; will retry", "backfill_id", id, "err", err)
	}
}

// lookedAt counts a look at request k of room roomID under outcome: k is
// due again after askAgain, and the room's next look waits for
// minInterval.
func (rq *requester) lookedAt(roomID string, k requestKey, now time.Time, outcome string) {
	rq.due[k], rq.last[roomID] = now.Add(askAgain), now
	rq.outcomes.WithLabelValues(outcome).Inc()
}

// refuse counts a request of a room that is not its server's, and
// remembers it for askAgain (logged once then) unless refusedAll are
// remembered already.
func (rq *requester) refuse(room roomKey, now time.Time, err error) {
	rq.outcomes.WithLabelValues("refused_server").Inc()
	if len(rq.refused) >= rq.refusedAll {
		return
	}
	rq.refused[room] = now.Add(askAgain)
	rq.refusedBy[room.server]++
	rq.log.Warn("backfill request refused: the server that shows it does not run the room", "room", room.matchID, "server", room.server.name, "cluster", room.server.cluster, "err", err)
	if rq.refusedBy[room.server] == refusedPerServer {
		rq.log.Warn("game server passed over: it asked for too many rooms that are not its own", "server", room.server.name, "cluster", room.server.cluster, "refused", refusedPerServer, "for", askAgain)
	}
}

// endRefusals forgets the refusals that ended, before a poll looks at
// the requests, so that a server passed over is looked at again as soon
// as its refusals end.
func (rq *requester) endRefusals(now time.Time) {
	for k, until := range rq.refused {
		if !now.Before(until) {
			delete(rq.refused, k)
			if rq.refusedBy[k.server]--; rq.refusedBy[k.server] <= 0 {
				delete(rq.refusedBy, k.server)
			}
		}
	}
}

// forget drops what is kept of requests that show no more and of rooms
// no longer shown whose interval ended.
func (rq *requester) forget(showing map[requestKey]bool, roomsShown map[string]bool, now time.Time) {
	for k := range rq.due {
		if !showing[k] {
			delete(rq.due, k)
		}
	}
	for id, at := range rq.last {
		if !roomsShown[id] && !now.Before(at.Add(rq.minInterval)) {
			delete(rq.last, id)
		}
	}
}
