package allocator

import (
	"context"
	"fmt"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Turnover. A room asks for players whenever its game server says seats
// are free, and under Agones no one is shown seated (promise.go): a
// promise holds its seats until its tokens expire, and then the room may
// ask for them again. A compromised game server that says every seat is
// free after each promise ends would be sent its room's whole shape
// again every token TTL, each player told "assigned" and lost to it for
// as long as the room runs. So a room may be backfilled with at most
// BackfillConfig.Turnover times its seats (record.Backfilled counts the
// players promised a seat, in the room's record, by the same
// compare-and-set as the promise), given back a player at a time, a room's
// seats each BackfillConfig.Refill (record.refill): past it, its requests
// are not published and a fill is refused (requeued). An honest room is
// sent a player for each who leaves, so the bound is on how often its
// seats are filled again, and what one compromised server takes from the
// queue is bounded by what it was allocated, and a room's seats an hour.
//
// The count starts with the room's first promise under this version, and
// an allocator of an earlier one that promises a seat writes the record
// without it (a rollout's window, or a rollback): the bound then starts
// again from zero.

// errRoomSpent: the room was backfilled with as many players as it may
// be now; its requests are refused, a fill of it requeued.
var errRoomSpent = fmt.Errorf("the room was backfilled with as many players as it may be now: %w", errRoomGone)

// budget is what a room may be backfilled with: most players promised at
// once, a player given back each per.
type budget struct {
	most int
	per  time.Duration // 0: none given back
}

// budget is room m's: turnover times the seats it was opened for (an
// early start's room counts those its match left free), a room's seats
// given back each refill.
func (rs *rooms) budget(m events.Match) (budget, error) {
	shape, err := roomSeats(m)
	if err != nil {
		return budget{}, err
	}
	seats := shape.Teams * shape.TeamSize
	b := budget{most: rs.turnover * seats}
	if rs.refill > 0 && seats > 0 {
		b.per = max(rs.refill/time.Duration(seats), time.Millisecond)
	}
	return b, nil
}

// refill gives back to r's count the players due at now under b, and
// keeps what is not yet a whole player for the next time; a count at
// zero starts the clock again.
func (r *record) refill(now time.Time, b budget) {
	at := now.UnixMilli()
	if b.per <= 0 {
		return
	}
	if ahead := r.BackfilledAt - at; ahead > 0 {
		// Written by an allocator whose clock is ahead of this one's:
		// nothing given back, and the clock left as it is (reset, the one
		// ahead would give the difference back again); unless it is
		// further ahead than the whole budget takes to come back, a
		// clock that was wrong, which would keep the room spent for good.
		if ahead > b.per.Milliseconds()*int64(b.most) {
			r.BackfilledAt = at
		}
		return
	}
	if r.Backfilled <= 0 || r.BackfilledAt <= 0 {
		r.BackfilledAt = at // nothing to give back, or a count from before refills
		return
	}
	per := b.per.Milliseconds()
	back := (at - r.BackfilledAt) / per
	if back >= int64(r.Backfilled) {
		r.Backfilled, r.BackfilledAt = 0, at
		return
	}
	r.Backfilled -= int(back)
	r.BackfilledAt += back * per
}

// startRefill writes now as room roomID's refill clock in its record
// if none is there while it counts players (a count written before
// refills, or by an allocator of an earlier version during a rollout):
// a promise starts the clock, and a room full then is given no promise,
// so it stayed full for good.
func (rs *records) startRefill(ctx context.Context, roomID string, now time.Time) {
	for range 3 {
		r, rev, err := rs.room(ctx, roomID)
		if err != nil || !r.clockless() {
			return
		}
		r.BackfilledAt = now.UnixMilli()
		data, err := r.encode()
		if err != nil {
			return
		}
		if _, err = rs.kv.Update(ctx, roomID, data, rev); err == nil {
			return
		}
	}
}

// clockless: r counts players but has no refill clock (startRefill).
func (r *record) clockless() bool { return r.Backfilled > 0 && r.BackfilledAt <= 0 }

// spent is errRoomSpent with the room's count.
func (r *record) spent(b budget) error {
	return fmt.Errorf("%d backfilled, at most %d: %w", r.Backfilled, b.most, errRoomSpent)
}

// spare is seats (per team) cut to the players room roomID, whose record
// r is (refilled), may still be backfilled with under b, the last teams'
// seats cut first: errRoomSpent when none.
func (r *record) spare(roomID string, seats []int, b budget) ([]int, error) {
	left := b.most - r.Backfilled
	if left <= 0 {
		return nil, fmt.Errorf("room %s: %w", roomID, r.spent(b))
	}
	out := make([]int, len(seats))
	for team, n := range seats {
		out[team] = min(n, left)
		left -= out[team]
	}
	return out, nil
}
