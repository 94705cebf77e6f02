package matcher

import (
	"sync"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// The recoveries of one match that a runner runs at once (the commits of
// a batch, each meeting one of the match's claims; the expiries of a
// sweep) send it once between them: each read it unsent and sent it,
// stored once but heard by every core subscriber again (CI: a test
// counting what it heard saw a carried match twice).
func TestRecoveriesOfOneMatchAtOnceSendItOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	see := testkit.Collect(t, e.nc, ">")
	m := e.forgedClaims(t, "m-dead", []string{"ta", "tb"}, nil) // a matcher died after claiming
	r := newRunner(e.boundWorker(t), events.Shard{Region: "eu", Tier: "gold"})
	const at = 8
	got := make([]recovery, at)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range at {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			got[i] = r.commits.rec.recoverMatch(t.Context(), m.MatchID, m.Tickets[i%2].TicketID)
		}()
	}
	start.Done()
	done.Wait()
	for i, g := range got {
		if g != recovered {
			t.Errorf("recovery %d: %v, want recovered", i, g)
		}
	}
	n := 0
	for _, msg := range testkit.Seen(t, e.nc, see) {
		if msg.Subject == e.subj.Allocation(m.Region) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("match heard %d times, want once", n)
	}
}
