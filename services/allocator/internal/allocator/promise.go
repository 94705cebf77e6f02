package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Promised seats. A room learns of a player sent to it only when they
// join: until then it counts their seat free, and asks for it again if
// its seats change meanwhile (another player leaves) or it re-asks
// (-backfill-reask). A join token is signed when the allocator handles
// the fill, which may be long after the request was made. So the
// allocator keeps, in the room's own record of the allocations bucket,
// the seats it promised to each match that fills the room, until that
// match's join tokens expire (record.Promised), and a fill is given only
// the seats the room asks for less those promised (records.promise).
// The record is written by compare-and-set on its revision: of two
// allocators promising the last seat, one wins, and the other's fill is
// requeued as any fill that no longer fits.
//
// A player who joined holds their seat in the room, which asks no more
// for it, and would hold it in the promise too until their token
// expired: a seat freed meanwhile (another player leaves) would be
// offered only then. So a promise's seat is released as soon as its
// player is seen seated (promise.held): the game server shows who holds
// seats with its requests (ShownBackfill.Seated: /status on the local
// backend; under Agones no one, see below). Released only when it is
// safe:
//
//   - The request shown must be a later one than the promise's (a higher
//     Ask): the player's join changes the room's free seats, so its Ask,
//     and the room shows them seated no sooner than the request that
//     counts their seat taken; a player shown seated beside the request
//     the promise filled is seated elsewhere (another room of the
//     server), and that request still counts the seat free.
//   - A promise whose player was already seated on the room's server
//     when promised (in another of its rooms) keeps its seats until it
//     ends (Ask 0), as does one whose players were dropped from the
//     record (encode) or one written before Ask was kept.
//   - Nothing is written: each allocator releases by what it is shown,
//     when it builds a request and when it promises, and the promise
//     stays in the record until it ends. Two allocators shown different
//     moments differ only in how soon they release: a fill sized on a
//     release the other does not see yet is refused and requeued; a
//     fill is promised only for the room's current Ask, by
//     compare-and-set on the record's revision.
//
// Under Agones no one is shown seated (kube.Backend.Backfills), so a
// promise there holds its seats until it ends, as before: the SDK sidecar
// writes a room's request (an annotation) and the players List as two
// GameServer updates, each retried on its own after a conflict, so the
// List may show an admitted player beside a request that still counts
// their seat free (a review found it in Agones' sdkserver; the keeper
// writes the request first, but the sidecar may apply them the other way
// round). On the local backend /status shows both in one answer. A
// known limit there: a player promised a seat who holds one in another
// room of the same server that asks too is taken as seated. No player is
// lost to a promise: a request waiting for one is looked at again within
// BackfillConfig.MinInterval and published once its seats are released
// or the promise ends (requester.record), and a fill refused for it is
// requeued with its wait.

// promise is the seats match Match takes in a room.
type promise struct {
	Match string `json:"match"`
	// Teams is the room's team of each seat taken.
	Teams []int `json:"teams"`
	// Until is when the match's join tokens expire (Unix ms).
	Until int64 `json:"until"`
	// Players are the match's, in the order of Teams; dropped when the
	// record would be too big (they keep a room from being sent one of
	// them again, and release a seat once seated).
	Players []string `json:"players,omitempty"`
	// Ask is the room's request the match fills; 0 when its seats are
	// held until Until whoever is seen seated (one of its players was
	// seated on the room's server already, or the record predates Ask).
	Ask int `json:"ask,omitempty"`
}

// held are the teams of the seats p holds in a room that shows a request
// of Ask ask with players seated (by id): a seat whose player is seated
// is released, once the request is a later one than p's (a higher Ask)
// and p still names its players.
func (p promise) held(ask int, seated map[string]bool) []int {
	if p.Ask == 0 || ask <= p.Ask || len(p.Players) != len(p.Teams) || len(seated) == 0 {
		return p.Teams
	}
	var out []int
	for i, team := range p.Teams {
		if !seated[p.Players[i]] {
			out = append(out, team)
		}
	}
	return out
}

// promiseMargin keeps a promise beyond its tokens' expiry: the room's
// request as this allocator sees it may be a poll or a watch behind the
// room (a player who joined just before the expiry is not seen yet),
// and the game server's clock may be ahead of this one's.
const promiseMargin = 30 * time.Second

// roomRecordBytes bounds a room's record: the allocations bucket keeps
// values of at most 4 KiB (events.Topology), less the headers of its
// compare-and-set.
const roomRecordBytes = 3 << 10

// errSeatsPromised: every seat the room asks for is promised to players
// on their way; the request waits for the promises to end.
var errSeatsPromised = errors.New("every seat asked for is promised")

// live says whether p still holds its seats at now.
func (p promise) live(now time.Time) bool {
	return now.Before(time.UnixMilli(p.Until).Add(promiseMargin))
}

// expire drops the promises that ended by now; their players are kept in
// Sent, newest last, without repeats.
func (r *record) expire(now time.Time) {
	r.Promised = slices.DeleteFunc(r.Promised, func(p promise) bool {
		if p.live(now) {
			return false
		}
		for _, pl := range p.Players {
			r.Sent = append(slices.DeleteFunc(r.Sent, func(s string) bool { return s == pl }), pl)
		}
		return true
	})
}

// free is the seats per team request b asks for, less those promised
// and held (promise.held).
func (r *record) free(b ShownBackfill) []int {
	out := slices.Clone(b.Seats)
	seated := make(map[string]bool, len(b.Seated)) // once for every promise
	for _, pl := range b.Seated {
		seated[pl] = true
	}
	for _, p := range r.Promised {
		for _, team := range p.held(b.Ask, seated) {
			if team >= 0 && team < len(out) {
				out[team] = max(out[team]-1, 0)
			}
		}
	}
	return out
}

// until is when the first promise ends (zero when none is held).
func (r *record) until() time.Time {
	var first time.Time
	for _, p := range r.Promised {
		if end := time.UnixMilli(p.Until).Add(promiseMargin); first.IsZero() || end.Before(first) {
			first = end
		}
	}
	return first
}

// players are the players promised a seat, then those sent before.
func (r *record) players() []string {
	var out []string
	for _, p := range r.Promised {
		out = append(out, p.Players...)
	}
	return append(out, r.Sent...)
}

// encode is a room's record within roomRecordBytes: the oldest players
// sent are dropped first, then the players of the oldest promises. A
// record whose promises alone do not fit promises nothing more.
func (r *record) encode() ([]byte, error) {
	for {
		data, _ := json.Marshal(r) // always encodes
		if len(data) <= roomRecordBytes {
			return data, nil
		}
		i := slices.IndexFunc(r.Promised, func(p promise) bool { return len(p.Players) > 0 })
		switch {
		case len(r.Sent) > 0:
			r.Sent = r.Sent[min(len(r.Sent), 8):]
		case i >= 0:
			r.Promised[i].Players = nil
		default:
			return nil, fmt.Errorf("%d promises fill the room's record: %w", len(r.Promised), errRoomGone)
		}
	}
}

// room reads room roomID's record and its revision: errRoomGone (wrapped)
// when it has none or no server in it (never allocated here, expired,
// failed, or still being allocated).
func (rs *records) room(ctx context.Context, roomID string) (record, uint64, error) {
	e, err := rs.kv.Get(ctx, roomID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return record{}, 0, fmt.Errorf("room %s: no allocation record: %w", roomID, errRoomGone)
	}
	if err != nil {
		return record{}, 0, fmt.Errorf("allocation record of %s: %w", roomID, err)
	}
	var r record
	if json.Unmarshal(e.Value(), &r) != nil || r.Server == nil {
		return record{}, 0, fmt.Errorf("room %s: no server in its allocation record: %w", roomID, errRoomGone)
	}
	return r, e.Revision(), nil
}

// promise promises match m the seats it takes in room roomID, which
// makes request b (free seats per team, who is seated), until its join
// tokens expire (until), and returns m's record: the room's server and
// until. The seats must be free less those promised to other matches
// and held (record.free), and the room sent no more than limit players
// over its life with m's (errRoomSpent), or m gets none (errRoomGone:
// its tickets are requeued). A match promised seats before (a retry)
// keeps its promise.
func (rs *records) promise(ctx context.Context, roomID string, m events.Match, b ShownBackfill, limit budget, until time.Time) (record, error) {
	seats := b.Seats
	var teams []int
	ask := b.Ask
	for _, t := range m.Tickets {
		for _, p := range t.Players {
			teams = append(teams, t.Team)
			if slices.Contains(b.Seated, p) {
				ask = 0 // seated elsewhere on the server: never released early
			}
		}
	}
	var lastErr error
	// Each pass loses only to another allocator's promise in this room.
	for range 5 {
		r, rev, err := rs.room(ctx, roomID)
		if err != nil {
			return record{}, err
		}
		r.expire(rs.now())
		if i := slices.IndexFunc(r.Promised, func(p promise) bool { return p.Match == m.MatchID }); i >= 0 {
			return record{Server: r.Server, Until: r.Promised[i].Until}, nil
		}
		r.refill(rs.now(), limit)
		if r.Backfilled+len(teams) > limit.most {
			return record{}, fmt.Errorf("room %s: match %s brings %d: %w", roomID, m.MatchID, len(teams), r.spent(limit))
		}
		free := r.free(b)
		promised := sum(seats) - sum(free)
		for _, team := range teams {
			if team < 0 || team >= len(free) || free[team] == 0 {
				return record{}, fmt.Errorf("room %s has no free seat for match %s on team %d (it asks for %v, %d of them promised): %w",
					roomID, m.MatchID, team, seats, promised, errRoomGone)
			}
			free[team]--
		}
		r.Promised = append(r.Promised, promise{Match: m.MatchID, Teams: teams, Until: until.UnixMilli(), Players: m.Players(), Ask: ask})
		r.Backfilled += len(teams)
		data, err := r.encode()
		if err != nil {
			return record{}, fmt.Errorf("room %s: %w", roomID, err)
		}
		if _, lastErr = rs.kv.Update(ctx, roomID, data, rev); lastErr == nil {
			return record{Server: r.Server, Until: until.UnixMilli()}, nil
		}
	}
	return record{}, fmt.Errorf("room %s: promise seats: %w", roomID, lastErr)
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}
