package matcher

import (
	"sync"
	"testing"
	"time"

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

// A recovery that joins one running for another claim of the match and
// gets an outcome other than recovered runs its own: that outcome was
// the other claim's (moved, unread, or not among the claims released).
// Here the running one is held and comes back undecided; the match is
// out to be sent, and the joined caller sends it.
func TestAJoinedRecoveryRunsItsOwnUnlessTheMatchIsOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.forgedClaims(t, "m-dead", []string{"ta", "tb"}, nil)
	r := newRunner(e.boundWorker(t), events.Shard{Region: "eu", Tier: "gold"})
	rc := r.commits.rec
	hold, first := make(chan struct{}), make(chan struct{})
	go func() {
		rc.recovering.Do(m.MatchID, func() (any, error) {
			close(first)
			<-hold
			return undecided, nil // as the other claim's read failing
		})
	}()
	<-first
	joined := make(chan recovery, 1)
	go func() { joined <- rc.recoverMatch(t.Context(), m.MatchID, "ta") }()
	// The joiner is in the flight by then (a joiner that came late runs
	// its own, and the test passes for that: it never fails for it).
	time.Sleep(200 * time.Millisecond)
	close(hold)
	if got := <-joined; got != recovered {
		t.Fatalf("joined recovery: %v, want recovered (its own, sending the match)", got)
	}
	if sent, err := rc.decisions.Sent(t.Context(), m.MatchID); err != nil || !sent {
		t.Fatalf("match sent %v, %v; want sent", sent, err)
	}
}
