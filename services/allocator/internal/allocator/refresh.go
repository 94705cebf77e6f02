package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Refreshing a long room's records. A room's backfill needs two records:
// its match (mode, shard, skill, attributes, shape) and its allocation
// record (its server, the seats promised in it). The buckets forget a
// record events.RecordTTL after it was last written, which suits a match
// but not a room: a game may run for hours, and a room whose records are
// gone can ask for no one (its server is no longer known to be its own).
// So while a room shows open on its server (BackfillSource.Rooms), the
// refresher copies its match from the matches bucket (the matchers',
// which only matchers write: a match there is published if its matcher
// died; they store every match whose room takes backfill there, and a
// few others: events.HeaderMatch) to the room matches bucket (the
// allocators'), and writes the copy and the allocation record again, unchanged, once they are
// refreshAfter old. A room's records live as long as its game runs and
// any allocator runs, and are forgotten a RecordTTL after its end. Only
// rooms that accept backfill are refreshed: no one reads the others'
// records after their allocation. Nothing is written per match on the
// allocation path.
//
// What a server shows is its word: the refresher refreshes only the rooms
// whose allocation record names the server that shows them, at most
// MaxRoomsShown a server (its backend's bound), and looks up at most
// looksPerServer of a server's rooms, and refreshLooks in all, a pass.

// refreshAfter is how old a room's record is when it is written again: a
// third of its life, so that a record outlives two missed writes (an
// allocator restarting, NATS unavailable for a while).
const refreshAfter = events.RecordTTL / 3

// Bounds of one pass, which runs on the goroutine that publishes the
// rooms' backfill requests: a pass that waits on NATS delays them.
const (
	// refreshLooks is the most rooms looked up in one pass; the rest are
	// looked up at the next (a pass a second, and a room is due once
	// every refreshAfter).
	refreshLooks = 256
	// refreshCallTimeout bounds each read or write of a look; a pass
	// ends at its first failed look (NATS away: the rest would fail too).
	refreshCallTimeout = 2 * time.Second
	// rememberedPerServer bounds the rooms remembered for one server
	// (each for askAgain after it last showed): a server shows at most
	// MaxRoomsShown at once, and one that showed 1,000 new ids a second
	// (a compromised one) left 121,000 in each map; past the bound a
	// server's new rooms are not looked at until its old ones are
	// forgotten.
	rememberedPerServer = 4 * MaxRoomsShown
)

// refresher writes again the records of the rooms a BackfillSource shows
// open. One goroutine (RequestBackfills) owns it.
type refresher struct {
	// matches is the matchers' bucket, roomMatches the copies of the
	// open rooms' matches, allocs the allocation records.
	matches, roomMatches, allocs jetstream.KeyValue
	src                          BackfillSource
	log                          *slog.Logger
	now                          func() time.Time
	after                        time.Duration // refreshAfter, but for tests
	// due is when each room shown open is looked at next, per server
	// that shows it (a server showing another's room delays nothing):
	// half of `after` after it first showed, then when its records'
	// older write is `after` old, askAgain after one that is not
	// refreshed (not its server's, no backfill, no record), or a minute
	// after one that failed. shown is when it last showed: a room
	// missing from a poll or two (a server that did not answer) keeps
	// its due time for askAgain.
	due, shown map[roomKey]time.Time
	// remembered counts shown's rooms by server (rememberedPerServer).
	remembered map[serverKey]int
	refreshed  *prometheus.CounterVec
}

func newRefresher(matches, roomMatches, allocs jetstream.KeyValue, src BackfillSource, log *slog.Logger, now func() time.Time) *refresher {
	return &refresher{matches: matches, roomMatches: roomMatches, allocs: allocs, src: src, log: log, now: now, after: refreshAfter,
		due: map[roomKey]time.Time{}, shown: map[roomKey]time.Time{}, remembered: map[serverKey]int{},
		refreshed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quickmatch_allocator_room_records_refreshed_total",
			Help: "Open rooms whose records were looked at, by outcome: refreshed (written again), fresh (written recently), not_refreshed (no backfill, not the showing server's, or no record), failed (NATS; tried again later).",
		}, []string{"outcome"}),
	}
}

// pass looks at the rooms shown open whose look is due.
func (f *refresher) pass(ctx context.Context) {
	shown, known := f.src.Rooms()
	if !known {
		return
	}
	now := f.now()
	looks, looksOf := 0, map[serverKey]int{}
	for _, r := range shown {
		srv := serverOf(r.Server)
		room := roomKey{srv, r.MatchID}
		if events.CheckID(r.MatchID) != nil {
			continue
		}
		if _, ok := f.shown[room]; !ok {
			if f.remembered[srv] >= rememberedPerServer {
				continue
			}
			f.remembered[srv]++
		}
		f.shown[room] = now
		due, ok := f.due[room]
		if !ok {
			// Most games end well within a match record's life: a room is
			// first looked at once it has shown for half of `after`, and
			// one that ends sooner costs no read. A room seen first by an
			// allocator that started late (its match up to an hour and a
			// quarter old) is still copied before its match is forgotten.
			f.due[room] = now.Add(f.after / 2)
			continue
		}
		if now.Before(due) || looksOf[srv] >= looksPerServer || looks >= refreshLooks {
			continue
		}
		looks++
		looksOf[srv]++
		next, outcome, err := f.refresh(ctx, r, now)
		f.due[room] = next
		f.refreshed.WithLabelValues(outcome).Inc()
		if err != nil && ctx.Err() == nil {
			f.log.Warn("room's records not refreshed", "room", r.MatchID, "server", r.Server.Name, "outcome", outcome, "err", err)
		}
		if outcome == "failed" {
			break
		}
	}
	for room, at := range f.shown {
		if now.Sub(at) > askAgain {
			delete(f.shown, room)
			delete(f.due, room)
			if f.remembered[room.server]--; f.remembered[room.server] <= 0 {
				delete(f.remembered, room.server)
			}
		}
	}
}

// refresh writes again room r's records that are f.after old, if r's
// allocation record names the server that shows it and its room accepts
// backfill. It returns when to look again and the outcome.
func (f *refresher) refresh(ctx context.Context, r ShownRoom, now time.Time) (time.Time, string, error) {
	later := now.Add(askAgain)
	alloc, err := f.get(ctx, f.allocs, r.MatchID)
	if err != nil {
		return outcomeOf(err, now, later)
	}
	var rec record
	if err := json.Unmarshal(alloc.Value(), &rec); err != nil {
		return later, "not_refreshed", fmt.Errorf("room %s: unreadable allocation record: %w", r.MatchID, err)
	}
	if err := rec.hosts(r.MatchID, r.Server); err != nil {
		return later, "not_refreshed", err
	}
	match, err := f.copy(ctx, r.MatchID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		// Matchers store the record of every match whose room takes
		// backfill, and of few others (most travel in their claims:
		// events.HeaderMatch), so most rooms have none, and are not
		// looked at again for long. A room that takes backfill whose
		// record aged out (no allocator ran for a RecordTTL) is forgotten
		// as well.
		return now.Add(f.after), "not_refreshed", nil
	}
	if err != nil {
		return outcomeOf(err, now, later)
	}
	m, err := decodeMatch(r.MatchID, match.Value())
	if err != nil {
		return later, "not_refreshed", err
	}
	if shape, err := roomSeats(m); err != nil || !shape.AcceptsBackfill {
		// Its mode may accept backfill after a rule-set reload, but its
		// room was opened without: it never asks.
		return now.Add(f.after), "not_refreshed", err
	}
	outcome := "fresh"
	for _, e := range []struct {
		kv    jetstream.KeyValue
		entry jetstream.KeyValueEntry
	}{{f.allocs, alloc}, {f.roomMatches, match}} {
		if now.Sub(e.entry.Created()) < f.after {
			continue
		}
		// Unchanged, at the revision read: a write in between (a
		// promise) wrote it anew already, and wins.
		cctx, cancel := context.WithTimeout(ctx, refreshCallTimeout)
		_, err := e.kv.Update(cctx, r.MatchID, e.entry.Value(), e.entry.Revision())
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return now.Add(time.Minute), "failed", err
		}
		outcome = "refreshed"
	}
	return f.nextLook(alloc, match, outcome, now), outcome, nil
}

// copy is room roomID's match in the room matches bucket, copied there
// from the matches bucket if it is not there yet (by this allocator or
// another: a create, so the first copy is the one). A copy of a room
// that takes no backfill is not made.
func (f *refresher) copy(ctx context.Context, roomID string) (jetstream.KeyValueEntry, error) {
	e, err := f.get(ctx, f.roomMatches, roomID)
	if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return e, err
	}
	e, err = f.get(ctx, f.matches, roomID)
	if err != nil {
		return nil, err
	}
	if m, err := decodeMatch(roomID, e.Value()); err != nil || !m.AcceptsBackfill {
		return e, err // not refreshed, from the caller's look at it
	}
	cctx, cancel := context.WithTimeout(ctx, refreshCallTimeout)
	_, err = f.roomMatches.Create(cctx, roomID, e.Value())
	cancel()
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, err
	}
	return f.get(ctx, f.roomMatches, roomID)
}

// get reads key of kv within refreshCallTimeout.
func (f *refresher) get(ctx context.Context, kv jetstream.KeyValue, key string) (jetstream.KeyValueEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, refreshCallTimeout)
	defer cancel()
	return kv.Get(ctx, key)
}

// nextLook is when a room's records are next `after` old: from their
// older write, or from now for those just written.
func (f *refresher) nextLook(alloc, match jetstream.KeyValueEntry, outcome string, now time.Time) time.Time {
	if outcome == "refreshed" {
		return now.Add(f.after)
	}
	older := alloc.Created()
	if match.Created().Before(older) {
		older = match.Created()
	}
	return older.Add(f.after)
}

// outcomeOf is the next look and outcome of a failed read: a record
// that is gone cannot be refreshed (looked at again askAgain later);
// NATS not answering is tried again in a minute.
func outcomeOf(err error, now, later time.Time) (time.Time, string, error) {
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return later, "not_refreshed", err
	}
	return now.Add(time.Minute), "failed", err
}
