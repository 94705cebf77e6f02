package chaos

import (
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

func TestTimelinessCountsLateAndNeedlessOutcomes(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	const maxWait = 20 * time.Second
	ticket := func(id, player, region string, from time.Duration) Acked {
		return Acked{TicketID: id, PlayerID: player, Region: region, Skill: 1700, AcceptedAt: at(from)}
	}
	result := func(id string, s events.Status, d time.Duration) events.Result {
		return events.Result{TicketID: id, Status: s, At: at(d)}
	}
	// a and b are an assigned pair in eu that keeps a server busy from 1 s.
	served := []events.Result{result("a", events.StatusAssigned, time.Second), result("b", events.StatusAssigned, time.Second)}
	base := []Acked{ticket("a", "pa", "eu", 0), ticket("b", "pb", "eu", 0)}
	cases := []struct {
		name              string
		acked             []Acked
		results           []events.Result
		late, exp, failed int
	}{
		{"expired beside a partner, a server given meanwhile",
			[]Acked{ticket("x", "px", "eu", 0), ticket("y", "py", "eu", 0)},
			[]events.Result{result("x", events.StatusExpired, 20*time.Second), result("y", events.StatusMatched, 3*time.Second)}, 0, 1, 0},
		{"the partner waited only a second beside it",
			[]Acked{ticket("x", "px", "eu", 0), ticket("y", "py", "eu", 0)},
			[]events.Result{result("x", events.StatusExpired, 20*time.Second), result("y", events.StatusMatched, time.Second)}, 0, 0, 0},
		{"the other ticket is in another region",
			[]Acked{ticket("x", "px", "eu", 0), ticket("y", "py", "us", 0)},
			[]events.Result{result("x", events.StatusExpired, 20*time.Second), result("y", events.StatusExpired, 20*time.Second)}, 0, 0, 0},
		{"the other ticket is the same player's",
			[]Acked{ticket("x", "px", "eu", 0), ticket("y", "px", "eu", 0)},
			[]events.Result{result("x", events.StatusExpired, 20*time.Second), result("y", events.StatusCancelled, 10*time.Second)}, 0, 0, 0},
		{"failed beside a partner",
			[]Acked{ticket("x", "px", "eu", 0), ticket("y", "py", "eu", 0)},
			[]events.Result{result("x", events.StatusFailed, 5*time.Second), result("y", events.StatusFailed, 5*time.Second)}, 0, 0, 2},
		{"assigned past the max wait and its grace",
			[]Acked{ticket("x", "px", "eu", 0)},
			[]events.Result{result("x", events.StatusAssigned, maxWait+lateGrace+time.Second)}, 1, 0, 0},
		{"assigned within the grace",
			[]Acked{ticket("x", "px", "eu", 0)},
			[]events.Result{result("x", events.StatusAssigned, maxWait+lateGrace-time.Second)}, 0, 0, 0},
	}
	// Of the late, those matched in time waited for their game server.
	t.Run("late after a match in time", func(t *testing.T) {
		acked := []Acked{ticket("x", "px", "us", 0), ticket("y", "py", "us", 0), ticket("z", "pz", "us", 0)}
		results := []events.Result{
			result("x", events.StatusMatched, 3*time.Second), result("x", events.StatusAssigned, 33*time.Second), // late after its match, 30 s
			result("y", events.StatusMatched, maxWait+lateGrace+time.Second), result("y", events.StatusAssigned, maxWait+lateGrace+2*time.Second), // matched late
			result("z", events.StatusMatched, 2*time.Second), result("z", events.StatusAssigned, 4*time.Second), // in time
		}
		got := Timeliness(acked, results, maxWait, at(time.Minute))
		if got.Late != 2 || got.LateAfterMatch != 1 || got.LateAfterMatchMaxSeconds != 30 {
			t.Fatalf("late %d, after a match in time %d (longest %.1f s); want 2, 1 (30 s)", got.Late, got.LateAfterMatch, got.LateAfterMatchMaxSeconds)
		}
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Timeliness(append(base[:2:2], c.acked...), append(served[:2:2], c.results...), maxWait, at(time.Minute))
			if got.Late != c.late || got.NeedlessExpired != c.exp || got.NeedlessFailed != c.failed {
				t.Fatalf("late %d, needless expired %d, failed %d; want %d, %d, %d (%+v)", got.Late, got.NeedlessExpired, got.NeedlessFailed, c.late, c.exp, c.failed, got)
			}
		})
	}
	t.Run("no server given during the wait", func(t *testing.T) {
		acked := []Acked{ticket("x", "px", "eu", 0), ticket("y", "py", "eu", 0)}
		results := []events.Result{result("x", events.StatusExpired, 20*time.Second), result("y", events.StatusExpired, 20*time.Second)}
		if got := Timeliness(acked, results, maxWait, at(time.Minute)); got.NeedlessExpired != 0 {
			t.Fatalf("counted %d needless with no server given", got.NeedlessExpired)
		}
	})
}
