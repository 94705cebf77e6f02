package allocator

import (
	"fmt"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Turnover. A room asks for players whenever its game server says seats
// are free, and under Agones no one is shown seated (promise.go): a
// promise holds its seats until its tokens expire, and then the room may
// ask for them again. A compromised game server that says every seat is
// free after each promise ends would be sent its room's whole shape
// again every token TTL, each player told "assigned" and lost to it for
// as long as the room runs. So a room is backfilled with at most
// BackfillConfig.Turnover times its seats over its life
// (record.Backfilled counts the players promised a seat, in the room's
// record, by the same compare-and-set as the promise): past it, its
// requests are not published and a fill is refused (requeued). An honest
// room is sent a player for each who leaves, so the bound is on how often
// its seats are filled again, and what one compromised server takes from
// the queue is bounded by what it was allocated.
//
// The count starts with the room's first promise under this version, and
// an allocator of an earlier one that promises a seat writes the record
// without it (a rollout's window, or a rollback): the bound then starts
// again from zero.

// errRoomSpent: the room was backfilled with as many players as it may
// be over its life; its requests are refused, a fill of it requeued.
var errRoomSpent = fmt.Errorf("the room was backfilled with as many players as it may be over its life: %w", errRoomGone)

// limit is the most players room m opened for is backfilled with:
// turnover times its seats (an early start's room counts those its
// match left free).
func (rs *rooms) limit(m events.Match) (int, error) {
	shape, err := roomSeats(m)
	if err != nil {
		return 0, err
	}
	return rs.turnover * shape.Teams * shape.TeamSize, nil
}

// spent is errRoomSpent with the room's count.
func (r *record) spent(limit int) error {
	return fmt.Errorf("%d backfilled, at most %d: %w", r.Backfilled, limit, errRoomSpent)
}

// spare is seats (per team) cut to the players room roomID, whose record
// r is, may still be backfilled with under limit, the last teams' seats
// cut first: errRoomSpent when none.
func (r *record) spare(roomID string, seats []int, limit int) ([]int, error) {
	left := limit - r.Backfilled
	if left <= 0 {
		return nil, fmt.Errorf("room %s: %w", roomID, r.spent(limit))
	}
	out := make([]int, len(seats))
	for team, n := range seats {
		out[team] = min(n, left)
		left -= out[team]
	}
	return out, nil
}
